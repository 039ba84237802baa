from .baseline import DriftSnapshot
from .record import Breach, MonitoringRecord
from .thresholds import MonitoringConfig, RiskLevel, Threshold, ThresholdSet
