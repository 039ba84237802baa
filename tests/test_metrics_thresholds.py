"""Thresholds, severities at the spec's boundaries, normalised scores and the aggregated score."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitoring_core.metrics.severity import CATEGORY_WEIGHTS, aggregated_score, category_score, judged, unavailable
from monitoring_core.models.common import Severity
from monitoring_core.models.record import MetricValue, Reason
from monitoring_core.models.thresholds import (
    CADENCE_BY_RISK_LEVEL,
    Cadence,
    Direction,
    MonitoringConfig,
    RiskLevel,
    Threshold,
    ThresholdSet,
)

INFO, WARNING, CRITICAL = Severity.INFO, Severity.WARNING, Severity.CRITICAL

# The spec's table, value by value at and around every boundary.
SPEC_BOUNDARIES = {
    "psi": [(0.0999, INFO), (0.10, WARNING), (0.2499, WARNING), (0.25, CRITICAL)],
    "kl_divergence": [(0.0999, INFO), (0.10, WARNING), (0.2999, WARNING), (0.30, CRITICAL)],
    "wasserstein_distance": [(0.1499, INFO), (0.15, WARNING), (0.30, WARNING), (0.3001, CRITICAL)],
    "category_frequency_shift": [(0.0999, INFO), (0.10, WARNING), (0.20, CRITICAL)],
    "missing_value_density_change": [(-0.5, INFO), (0.0499, INFO), (0.05, WARNING), (0.15, CRITICAL)],
    "demographic_parity": [(0.05, INFO), (0.0501, WARNING), (0.10, WARNING), (0.1001, CRITICAL)],
    "equal_opportunity": [(0.05, INFO), (0.0501, WARNING), (0.10, WARNING), (0.1001, CRITICAL)],
    "disparate_impact": [(1.0, INFO), (0.90, INFO), (0.8999, WARNING), (0.80, WARNING), (0.7999, CRITICAL)],
    "prediction_distribution_shift": [(0.20, INFO), (0.2001, WARNING), (0.40, WARNING), (0.4001, CRITICAL)],
    "accuracy_drop": [(-0.2, INFO), (0.05, INFO), (0.0501, WARNING), (0.10, WARNING), (0.1001, CRITICAL)],
    "output_entropy_change": [(0.25, INFO), (0.2501, WARNING), (0.50, WARNING), (0.5001, CRITICAL)],
    "prediction_volatility": [(0.10, INFO), (0.1001, WARNING), (0.20, WARNING), (0.2001, CRITICAL)],
    "shap_kl_divergence": [(0.0999, INFO), (0.10, WARNING), (0.30, CRITICAL)],
    "top_features_change": [(1, INFO), (2, WARNING), (3, CRITICAL), (5, CRITICAL)],
    "rank_correlation": [(1.0, INFO), (0.80, INFO), (0.7999, WARNING), (0.60, WARNING), (0.5999, CRITICAL)],
    "aggregated_score": [(0.30, INFO), (0.3001, CRITICAL)],
}


@pytest.mark.parametrize("metric", sorted(SPEC_BOUNDARIES))
def test_default_severities_follow_the_spec_table(metric):
    threshold = ThresholdSet()[metric]
    for value, expected in SPEC_BOUNDARIES[metric]:
        assert threshold.severity(value) is expected, (metric, value)


def test_missing_value_has_no_severity():
    assert ThresholdSet().psi.severity(None) is INFO
    assert ThresholdSet().psi.severity(float("nan")) is INFO


@pytest.mark.parametrize("metric, bounds", [("psi", {"warning": 0.3, "critical": 0.2}),
                                            ("disparate_impact", {"warning": 0.7})])
def test_a_warning_on_the_wrong_side_of_critical_is_refused_naming_the_metric(metric, bounds):
    with pytest.raises(ValidationError, match=f"{metric}: WARNING threshold"):
        ThresholdSet(**{metric: bounds})
    with pytest.raises(ValidationError, match=metric):
        MonitoringConfig(positive_label="approve", thresholds={"medium": {metric: bounds}})


def test_partial_override_keeps_the_other_bounds():
    custom = ThresholdSet(demographic_parity={"warning": 0.03})
    assert (custom.demographic_parity.warning, custom.demographic_parity.critical) == (0.03, 0.10)
    assert custom.psi == ThresholdSet().psi


def test_thresholds_per_risk_level():
    config = MonitoringConfig(positive_label="approve", risk_level="low",
                              thresholds={"high": {"demographic_parity": {"warning": 0.02, "critical": 0.04}}})
    assert set(config.thresholds) == set(RiskLevel)
    assert config.active_thresholds == ThresholdSet()  # low: the policy defaults
    high = config.model_copy(update={"risk_level": RiskLevel.HIGH})
    assert high.active_thresholds.demographic_parity.critical == 0.04
    again = MonitoringConfig.model_validate_json(config.model_dump_json())
    assert again == config


def test_config_validation():
    with pytest.raises(ValidationError):
        MonitoringConfig(positive_label="approve", min_group_size=0)
    with pytest.raises(ValidationError, match="not among class_labels"):
        MonitoringConfig(positive_label="approve", class_labels=["yes", "no"])
    with pytest.raises(ValidationError, match="distinct"):
        MonitoringConfig(positive_label="approve", protected_attributes=["gender", "gender"])
    defaults = MonitoringConfig(positive_label="approve")
    assert (defaults.min_window_size, defaults.min_group_size, defaults.bins, defaults.eps,
            defaults.bootstrap_resamples, defaults.confidence_level, defaults.min_hourly_chunk) == \
        (100, 30, 10, 1e-4, 200, 0.95, 30)


def test_cadence_table_with_fairness_at_least_daily():
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.HIGH].explanation is Cadence.WEEKLY
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.MEDIUM].data is Cadence.WEEKLY
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.LOW].explanation is Cadence.MONTHLY
    assert all(c.fairness is Cadence.DAILY for c in CADENCE_BY_RISK_LEVEL.values())
    assert MonitoringConfig(positive_label="a", risk_level="medium").cadence.model is Cadence.WEEKLY
    assert Cadence.BIWEEKLY.interval.days == 14


def test_normalised_scores():
    higher = ThresholdSet().psi
    assert higher.normalised(0.125) == pytest.approx(0.5)
    assert higher.normalised(0.5) == 1.0 and higher.normalised(-0.1) == 0.0
    lower = ThresholdSet().disparate_impact
    assert lower.normalised(0.9) == pytest.approx(0.5)  # (1 - 0.9) / (1 - 0.8)
    assert lower.normalised(0.5) == 1.0 and lower.normalised(1.0) == 0.0
    assert ThresholdSet().rank_correlation.normalised(-1.0) == 1.0


def test_category_and_aggregated_scores():
    psi = ThresholdSet().psi
    items = [judged(MetricValue, 0.05, psi), judged(MetricValue, 0.2, psi),
             unavailable(MetricValue, Reason.INSUFFICIENT_DATA, psi)]
    assert category_score(items) == pytest.approx(0.8)
    assert category_score(items[2:]) is None
    scores = {"fairness": 1.0, "data": 0.5, "model": None, "explanation": 0.0}
    expected = (0.4 * 1.0 + 0.3 * 0.5) / (0.4 + 0.3 + 0.1)
    assert aggregated_score(scores) == pytest.approx(expected)
    assert aggregated_score({c: None for c in CATEGORY_WEIGHTS}) == 0.0
    assert aggregated_score({c: 1.0 for c in CATEGORY_WEIGHTS}) == pytest.approx(1.0)


def test_an_unavailable_metric_cannot_carry_a_value_or_severity():
    with pytest.raises(ValidationError):
        MetricValue(available=False, value=0.3, reason=Reason.INSUFFICIENT_DATA)
    with pytest.raises(ValidationError):
        MetricValue(available=False, severity=CRITICAL, reason=Reason.INSUFFICIENT_DATA)
    with pytest.raises(ValidationError):
        MetricValue(available=False)
    with pytest.raises(ValidationError):
        MetricValue(value=float("inf"))


def test_direction_and_inclusivity_are_explicit():
    custom = Threshold(metric="x", warning=1, critical=2, direction=Direction.HIGHER_IS_WORSE,
                       warning_inclusive=True, critical_inclusive=False)
    assert [custom.severity(v) for v in (0.9, 1, 2, 2.1)] == [INFO, WARNING, WARNING, CRITICAL]
    assert custom.bound_for(CRITICAL) == 2 and custom.bound_for(INFO) is None
