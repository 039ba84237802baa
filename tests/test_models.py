"""The collections' documents refuse what the schema refuses, naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from monitoring_core.models.alerts import AlertSuppression
from monitoring_core.models.audit import AuditEntry
from monitoring_core.models.incidents import Incident
from monitoring_core.models.predictions import PredictionLog

from .factories import NOW

GOOD = {"model_id": "loan", "model_version": "1", "timestamp": NOW, "features": {"income": 1.0},
        "prediction": {"class": "approve", "confidence": 0.8}}


def refused(model, data) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return str(caught.value)


@pytest.mark.parametrize(("change", "field"), [
    ({"prediction": {"class": "approve", "confidence": 1.01}}, "prediction.confidence"),
    ({"prediction": {"class": "", "confidence": 0.5}}, "prediction.class"),
    ({"prediction": {"class": "a", "confidence": 0.5, "probabilities": {"a": -0.1}}}, "prediction.probabilities.a"),
    ({"features": {"income": float("inf")}}, "features"),
    ({"features": {}}, "features"),
    ({"features": {"in.come": 1.0}}, "features"),
    ({"colour": "red"}, "colour"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"metadata": {"latency_ms": -3}}, "metadata.latency_ms"),
    ({"ground_truth_timestamp": NOW}, "ground_truth"),
])
def test_prediction_logs_refuse_bad_values(change, field):
    assert field in refused(PredictionLog, {**GOOD, **change})


def test_prediction_times_are_utc_milliseconds_and_nan_is_missing():
    log = PredictionLog.model_validate({**GOOD, "timestamp": datetime(2026, 1, 1, 12, 0, 0, 123456),
                                        "features": {"income": float("nan"), "purpose": "car"}})
    assert log.timestamp == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    assert log.features == {"income": None, "purpose": "car"}
    shifted = PredictionLog.model_validate({**GOOD, "timestamp": "2026-01-01T12:00:00+02:00"})
    assert shifted.timestamp == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)


def test_incident_rules_of_the_schema():
    assert "a CRITICAL incident must have assigned_to" in refused(Incident, {"model_id": "m", "severity": "CRITICAL"})
    fairness = {"model_id": "m", "severity": "WARNING",
                "metrics_triggered": [{"metric_name": "demographic_parity_drift", "value": 0.07, "threshold": 0.05}]}
    assert "must list affected_groups" in refused(Incident, fairness)
    assert Incident.model_validate({**fairness, "affected_groups": ["gender=female"]}).status == "open"
    assert "severity" in refused(Incident, {"model_id": "m", "severity": "SEVERE"})
    assert "status" in refused(Incident, {"model_id": "m", "severity": "INFO", "status": "closed"})


def test_suppression_rules():
    base = {"model_id": "m", "metric_name": "psi:income", "start_time": NOW, "end_time": NOW + timedelta(days=1),
            "reason": "maintenance", "suppression_type": "maintenance", "created_by": "ana"}
    assert AlertSuppression.model_validate(base).suppress_severities == ["INFO", "WARNING", "CRITICAL"]
    assert "end_time must be after start_time" in refused(AlertSuppression, {**base, "end_time": NOW})
    assert "needs an approver" in refused(AlertSuppression, {**base, "metric_name": "disparate_impact:race"})
    assert "needs an approver" in refused(AlertSuppression, {**base, "metric_name": None})
    assert "30 days at most" in refused(AlertSuppression, {**base, "suppression_type": "accepted_risk",
                                                           "end_time": NOW + timedelta(days=31)})


def test_audit_entries_know_their_events():
    assert "event_type" in refused(AuditEntry, {"event_type": "coffee_break", "actor": {"user_id": "a"}})


# -- the metric registry ---------------------------------------------------------------------

def test_thresholds_record_blocks_and_weights_come_from_the_metric_registry():
    from monitoring_core.metrics.severity import CATEGORY_WEIGHTS
    from monitoring_core.models import metric_registry as reg
    from monitoring_core.models.record import BLOCKS
    from monitoring_core.models.thresholds import ThresholdSet

    assert list(ThresholdSet.model_fields) == list(reg.METRICS)
    for category in reg.CATEGORIES:
        assert list(BLOCKS[category.name].model_fields) == [m.name for m in reg.metrics_of(category)]
    assert CATEGORY_WEIGHTS == {"data": 0.30, "fairness": 0.40, "model": 0.20, "explanation": 0.10}
    spec = reg.DISPARATE_IMPACT
    assert ThresholdSet().disparate_impact.model_dump() == {
        "metric": "disparate_impact", "warning": 0.90, "critical": 0.80, "direction": spec.direction,
        "warning_inclusive": False, "critical_inclusive": False}


def test_a_risk_level_default_declared_in_the_registry_reaches_the_config(monkeypatch):
    from dataclasses import replace

    from monitoring_core.models import metric_registry as reg
    from monitoring_core.models.thresholds import MonitoringConfig, RiskLevel

    stricter = replace(reg.PSI, bounds_by_risk={RiskLevel.LOW: reg.Bounds(0.2, 0.4, True, True)})
    monkeypatch.setitem(reg._REGISTRY, "psi", stricter)
    config = MonitoringConfig(positive_label="a", thresholds={"low": {"psi": {"critical": 0.5}}})
    assert (config.thresholds[RiskLevel.LOW].psi.warning, config.thresholds[RiskLevel.LOW].psi.critical) == (0.2, 0.5)
    assert config.thresholds[RiskLevel.HIGH].psi.warning == 0.10
    assert MonitoringConfig(positive_label="a").thresholds[RiskLevel.LOW].psi.warning == 0.2


def test_incident_metric_names_are_the_registry_s():
    from monitoring_core.models.incidents import is_fairness_metric

    assert is_fairness_metric("disparate_impact:race") and is_fairness_metric("equal_opportunity_drift")
    assert not is_fairness_metric("psi:income") and not is_fairness_metric("aggregated_score")
    assert not is_fairness_metric("demographic")


def test_registration_refuses_a_positive_class_the_model_does_not_have():
    from monitoring_core.models.registry import RegisteredModel

    data = {"model_id": "m", "monitoring": {"positive_label": "Approve", "class_labels": ["approve", "reject"]}}
    assert ("positive class 'Approve' not among class_labels ['approve', 'reject']; did you mean 'approve'?"
            in refused(RegisteredModel, data))
