from .baseline import DriftSnapshot
from .incidents import TriggeredMetric
from .record import MonitoringRecord
from .thresholds import MonitoringConfig, RiskLevel, Threshold, ThresholdSet
