"""Thresholds, severities at the spec's boundaries, normalised scores and the aggregated score."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitoring_core.metrics.severity import (
    CATEGORY_WEIGHTS,
    aggregated_score,
    category_score,
    judged,
    metric_score,
    overall_severity,
    unavailable,
)
from monitoring_core.models import metric_registry as reg
from monitoring_core.models.common import Severity
from monitoring_core.models.record import FairnessValue, MetricValue, Reason
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
    with pytest.raises(ValidationError, match=r"intersections\[0\] \['gender', 'religion'\]: \['religion'\] not among "
                                              "protected_attributes"):
        MonitoringConfig(positive_label="approve", intersections=[["gender", "religion"]])
    with pytest.raises(ValidationError, match="two or more distinct attributes"):
        MonitoringConfig(positive_label="approve", intersections=[["gender", "gender"]])
    with pytest.raises(ValidationError, match="listed twice"):
        MonitoringConfig(positive_label="approve", intersections=[["gender", "race"], ["race", "gender"]])
    with pytest.raises(ValidationError, match="fairness_alpha"):
        MonitoringConfig(positive_label="approve", fairness_alpha=0)
    crossed = MonitoringConfig(positive_label="approve", intersections=[["gender", "race"]])
    assert crossed.fairness_attributes == ["gender", "age_group", "race", "gender&race"]
    defaults = MonitoringConfig(positive_label="approve")
    assert (defaults.min_window_size, defaults.min_group_size, defaults.bins, defaults.eps,
            defaults.bootstrap_resamples, defaults.confidence_level, defaults.min_hourly_chunk,
            defaults.fairness_alpha, defaults.permutation_resamples, defaults.intersections) == \
        (100, 30, 10, 1e-4, 200, 0.95, 30, 0.01, 9999, [])


def test_cadence_table_with_fairness_at_least_daily():
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.HIGH].explanation is Cadence.WEEKLY
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.MEDIUM].data is Cadence.WEEKLY
    assert CADENCE_BY_RISK_LEVEL[RiskLevel.LOW].explanation is Cadence.MONTHLY
    assert all(c.fairness is Cadence.DAILY for c in CADENCE_BY_RISK_LEVEL.values())
    assert MonitoringConfig(positive_label="a", risk_level="medium").cadence.model is Cadence.WEEKLY
    assert Cadence.BIWEEKLY.interval.days == 14


def test_positions_between_warning_and_critical():
    higher = ThresholdSet().psi  # 0.10 .. 0.25
    assert higher.position(0.175) == pytest.approx(0.5)
    assert higher.position(0.05) == 0.0 and higher.position(0.4) == 1.0
    lower = ThresholdSet().disparate_impact  # 0.90 .. 0.80, mirrored
    assert lower.position(0.85) == pytest.approx(0.5)
    assert lower.position(0.95) == 0.0 and lower.position(0.5) == 1.0
    assert ThresholdSet().rank_correlation.position(0.7) == pytest.approx(0.5)
    assert Threshold(warning=0.3, critical=0.3).position(0.31) == 0.0  # no WARNING band


def score(metric: str, value: float, **fields) -> float:
    return metric_score(judged(FairnessValue if metric in FAIRNESS_NAMES else MetricValue, value,
                               ThresholdSet()[metric], **fields), reg.METRICS[metric])


FAIRNESS_NAMES = {m.name for m in reg.metrics_of(reg.FAIRNESS)}


def test_metric_scores_follow_the_bands_of_the_registry():
    assert score("psi", 0.05) == 0.0  # INFO
    assert score("psi", 0.175) == pytest.approx(0.25)  # WARNING, half way: 0.5 x 0.5
    assert score("psi", 0.25) == 1.0 and score("psi", 3.0) == 1.0  # CRITICAL
    assert score("disparate_impact", 0.85) == pytest.approx(0.25)  # mirrored
    assert score("demographic_parity", 0.10) == pytest.approx(0.5)  # the top of the WARNING band
    psi = ThresholdSet().psi
    assert metric_score(unavailable(MetricValue, Reason.INSUFFICIENT_DATA, psi), reg.PSI) == 0.0
    inconclusive = FairnessValue(value=0.12, severity=INFO, threshold=ThresholdSet().demographic_parity,
                                 point_severity=CRITICAL, inconclusive=True, p_value=0.3, p_value_adjusted=0.3)
    assert metric_score(inconclusive, reg.DEMOGRAPHIC_PARITY) == 0.0
    with pytest.raises(ValidationError, match="inconclusive"):
        FairnessValue(value=0.12, severity=CRITICAL, inconclusive=True)


def test_category_and_aggregated_scores_use_fixed_weights():
    assert category_score([0.0, 0.25, None]) == 0.25
    assert category_score([None]) is None and category_score([]) is None
    scores = {"fairness": 1.0, "data": 0.5, "model": None, "explanation": 0.0}
    assert aggregated_score(scores) == pytest.approx(0.4 * 1.0 + 0.3 * 0.5)  # no renormalisation
    assert aggregated_score({c: None for c in CATEGORY_WEIGHTS}) == 0.0
    assert aggregated_score({c: 1.0 for c in CATEGORY_WEIGHTS}) == pytest.approx(1.0)
    assert aggregated_score({"data": 1.0}) == pytest.approx(0.3)  # one category alone: its weight


def run_severity(values: dict[str, float]) -> tuple[float, Severity]:
    """A run's (aggregated score, max severity) with one metric per category given."""
    metrics = {name: judged(MetricValue, v, ThresholdSet()[name]) for name, v in values.items()}
    by_category = {c.name: category_score([metric_score(metrics[m.name], m) for m in reg.metrics_of(c)
                                           if m.name in metrics]) for c in reg.CATEGORIES}
    total = aggregated_score(by_category)
    return total, overall_severity(metrics.values(), total, ThresholdSet().aggregated_score)


@pytest.mark.parametrize("metric, value", [("demographic_parity", 0.0999), ("disparate_impact", 0.8),
                                           ("psi", 0.2499), ("accuracy_drop", 0.0999), ("rank_correlation", 0.6)])
def test_spec_6_a_single_warning_cannot_make_a_run_critical(metric, value):
    total, severity = run_severity({metric: value})
    assert total <= 0.20 and severity is WARNING


def test_spec_6_fairness_and_data_deep_in_their_warning_bands_make_a_run_critical():
    total, severity = run_severity({"demographic_parity": 0.0975, "psi": 0.2425})  # both 95% of the way
    assert total == pytest.approx(0.40 * 0.475 + 0.30 * 0.475) and total > 0.30
    assert severity is CRITICAL
    total, severity = run_severity({"demographic_parity": 0.075, "psi": 0.175})  # both half way
    assert total == pytest.approx(0.40 * 0.25 + 0.30 * 0.25) and severity is WARNING


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
