"""Small, realistic documents and frames for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from monitoring_core.models import columns as col
from monitoring_core.models.baseline import DriftSnapshot
from monitoring_core.models.common import Severity
from monitoring_core.models.record import (
    AccuracyDrop,
    DataDrift,
    DataQuality,
    EntropyChange,
    ExplanationDrift,
    FairnessDrift,
    FairnessMetric,
    FeatureMetric,
    MetricValue,
    ModelDrift,
    MonitoringRecord,
    PredictionShift,
    PredictionVolatility,
    Reason,
    RecordMetrics,
    TopFeaturesChange,
    WorstFeatureMetric,
)
from monitoring_core.models.thresholds import Threshold

# Recent in real time on purpose: MongoDB's TTL indexes (and mongomock's imitation of them)
# delete by the real clock, so documents dated years ago would vanish mid-test. Retention
# tests instead purge with a "now" in the future.
NOW = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def prediction_frame(rows: int, *, model_id: str = "loan", start_id: int = 0, seed: int = 0) -> pd.DataFrame:
    """Canonical predictions one minute apart ending at NOW, with every column family."""
    rng = np.random.default_rng(seed + start_id)
    stamps = pd.Series(pd.date_range(end=NOW, periods=rows, freq="min")) + pd.to_timedelta(start_id % 997, unit="ms")
    stamps = stamps.astype("datetime64[ms, UTC]")
    approve = rng.random(rows)
    labelled = rng.random(rows) < 0.5
    return pd.DataFrame({
        col.PREDICTION_ID: pd.Series([f"{model_id}-{start_id + i:06d}" for i in range(rows)], dtype="str"),
        col.MODEL_ID: pd.Series([model_id] * rows, dtype="str"),
        col.MODEL_VERSION: pd.Series(["2.3.0"] * rows, dtype="str"),
        col.TIMESTAMP: stamps,
        col.PREDICTED_CLASS: pd.Series(np.where(approve > 0.5, "approve", "reject"), dtype="str"),
        col.CONFIDENCE: np.maximum(approve, 1 - approve),
        col.probability("approve"): approve,
        col.feature("income"): np.where(rng.random(rows) < 0.05, np.nan, rng.normal(50_000, 9_000, rows).round(2)),
        col.feature("purpose"): pd.Series(rng.choice(["car", "home", "education"], rows), dtype="str"),
        col.protected("gender"): pd.Series(rng.choice(["female", "male"], rows), dtype="str"),
        col.GROUND_TRUTH: pd.Series(np.where(labelled, np.where(rng.random(rows) < 0.6, "approve", "reject"), None),
                                    dtype="str"),
        col.explanation("income"): rng.normal(0, 0.3, rows),
    })


def make_snapshot(model_id: str, *, active: bool = False, created_at: datetime = NOW) -> DriftSnapshot:
    return DriftSnapshot(model_id=model_id, model_version="2.3.0", is_active=active, created_at=created_at,
                         sample_count=1000, positive_label="approve",
                         prediction_distribution={"approve": 0.57, "reject": 0.43})


def make_record(model_id: str, at: datetime) -> MonitoringRecord:
    psi = FeatureMetric(feature="income", value=0.31, severity=Severity.CRITICAL, sample_count=900,
                        threshold=Threshold(metric="psi", warning=0.1, critical=0.25, warning_inclusive=True,
                                            critical_inclusive=True))
    def missing(kind=MetricValue):
        return kind(available=False, reason=Reason.NO_GROUND_TRUTH)

    metrics = RecordMetrics(
        data_drift=DataDrift(psi={"income": psi}, kl_divergence=missing(WorstFeatureMetric),
                             wasserstein_distance=missing(WorstFeatureMetric)),
        fairness_drift=FairnessDrift(demographic_parity=missing(FairnessMetric),
                                     equal_opportunity=missing(FairnessMetric), disparate_impact=missing(FairnessMetric)),
        model_drift=ModelDrift(prediction_distribution_shift=missing(PredictionShift), accuracy_drop=missing(AccuracyDrop),
                               output_entropy_change=missing(EntropyChange),
                               prediction_volatility=missing(PredictionVolatility)),
        explanation_drift=ExplanationDrift(shap_kl_divergence=missing(), top_features_change=missing(TopFeaturesChange),
                                           rank_correlation=missing()),
        data_quality=DataQuality(),
    )
    return MonitoringRecord(model_id=model_id, analysis_period={"start": at - timedelta(days=1), "end": at},
                            timestamp=at, sample_count=900, metrics=metrics, aggregated_score=0.3,
                            max_severity=Severity.CRITICAL)
