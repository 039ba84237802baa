"""The metric registry: one declaration per metric, everything else derived from it.

Each :class:`MetricSpec` names a metric and says what it measures on (a feature, a
protected attribute, the model), which direction is worse, its default WARNING/CRITICAL
bounds per risk level, its unit, display name and what data it needs. From this table:

* :class:`~monitoring_core.models.thresholds.ThresholdSet` gets one field per metric;
* the record's blocks (``data_drift``, ``fairness_drift``...) get one field per metric of
  their category (:mod:`monitoring_core.models.record`);
* :meth:`~monitoring_core.models.record.MonitoringRecord.breaches` names each breached item
  ``<metric>`` or ``<metric>:<feature or attribute>``, the incident metric names;
* the aggregated score weights each category by :attr:`Category.weight` and scores each
  metric by its :class:`ScoreBands` (spec section 6).

Adding a metric is one :func:`_declare` call here plus its kernel in ``monitoring_core.metrics``
and its line in the engine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType


class Direction(enum.StrEnum):
    HIGHER_IS_WORSE = "higher_is_worse"
    LOWER_IS_WORSE = "lower_is_worse"


class RiskLevel(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Scope(enum.StrEnum):
    """What one value of the metric is about, and so how the record stores it."""

    FEATURE = "feature"  # a map feature -> value
    WORST_FEATURE = "worst_feature"  # the worst feature's value, plus the map
    ATTRIBUTE = "attribute"  # the worst protected attribute's value, plus the map
    MODEL = "model"  # one value for the model


@dataclass(frozen=True)
class Category:
    name: str
    record_block: str  # the record's field holding this category's metrics
    weight: float  # weight in the aggregated score (spec section 6)
    display_name: str


DATA = Category("data", "data_drift", 0.30, "Data drift")
FAIRNESS = Category("fairness", "fairness_drift", 0.40, "Fairness drift")
MODEL = Category("model", "model_drift", 0.20, "Model drift")
EXPLANATION = Category("explanation", "explanation_drift", 0.10, "Explanation drift")
CATEGORIES: tuple[Category, ...] = (DATA, FAIRNESS, MODEL, EXPLANATION)


@dataclass(frozen=True)
class Bounds:
    """Default WARNING/CRITICAL bounds (a :class:`~.thresholds.Threshold` without its name)."""

    warning: float
    critical: float
    warning_inclusive: bool = False
    critical_inclusive: bool = False


@dataclass(frozen=True)
class ScoreBands:
    """A metric's score towards the aggregate (spec section 6, revised 2026-11-23).

    0 at INFO (and when unavailable or inconclusive); ``warning_ceiling * position`` at
    WARNING, ``position`` in ``[0, 1]`` being how far the value has gone from the WARNING
    towards the CRITICAL threshold; ``critical`` at CRITICAL. With the weights of
    :data:`CATEGORIES` a single WARNING scores at most 0.40 x 0.5 = 0.20, below the
    aggregated score's CRITICAL bound of 0.30.
    """

    warning_ceiling: float = 0.5
    critical: float = 1.0


SPEC_SCORE_BANDS = ScoreBands()


@dataclass(frozen=True)
class MetricSpec:
    name: str
    category: Category | None  # None: the aggregated score, which is no category's metric
    scope: Scope
    direction: Direction
    bounds: Bounds
    unit: str
    display_name: str
    needs_labels: bool = False
    needs_shap: bool = False
    applies_to: frozenset[str] = frozenset()  # feature kinds, for feature metrics
    aliases: tuple[str, ...] = ()  # other spellings of the name (the source schema's)
    bounds_by_risk: dict[RiskLevel, Bounds] = field(default_factory=dict)
    score_bands: ScoreBands = SPEC_SCORE_BANDS
    group_rate: str | None = None  # fairness: the per-group rate compared (metrics on one rate share a test)

    def default_bounds(self, level: RiskLevel) -> Bounds:
        """The policy's bounds for ``level`` (one table for every level unless declared)."""
        return self.bounds_by_risk.get(level, self.bounds)

    def threshold_fields(self, level: RiskLevel) -> dict:
        """Keyword arguments of this metric's default :class:`~.thresholds.Threshold`."""
        b = self.default_bounds(level)
        return dict(metric=self.name, warning=b.warning, critical=b.critical, direction=self.direction,
                    warning_inclusive=b.warning_inclusive, critical_inclusive=b.critical_inclusive)


_REGISTRY: dict[str, MetricSpec] = {}


def _declare(spec: MetricSpec) -> MetricSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"metric {spec.name!r} is declared twice")
    _REGISTRY[spec.name] = spec
    return spec


_HIGHER, _LOWER = Direction.HIGHER_IS_WORSE, Direction.LOWER_IS_WORSE
_NUMERICAL = frozenset({"numerical"})
_CATEGORICAL = frozenset({"categorical", "boolean"})
_EVERY_KIND = _NUMERICAL | _CATEGORICAL

SELECTION_RATE, TRUE_POSITIVE_RATE = "selection_rate", "true_positive_rate"

# The spec's table (../shared/spec/metrics.md), which refines the policy's section 2.
PSI = _declare(MetricSpec(
    "psi", DATA, Scope.FEATURE, _HIGHER, Bounds(0.10, 0.25, True, True), "index", "PSI", applies_to=_EVERY_KIND))
KL_DIVERGENCE = _declare(MetricSpec(
    "kl_divergence", DATA, Scope.WORST_FEATURE, _HIGHER, Bounds(0.10, 0.30, True, True), "nats", "KL divergence",
    applies_to=_EVERY_KIND))
WASSERSTEIN_DISTANCE = _declare(MetricSpec(
    "wasserstein_distance", DATA, Scope.WORST_FEATURE, _HIGHER, Bounds(0.15, 0.30, True, False),
    "reference std", "Wasserstein distance", applies_to=_NUMERICAL))
CATEGORY_FREQUENCY_SHIFT = _declare(MetricSpec(
    "category_frequency_shift", DATA, Scope.FEATURE, _HIGHER, Bounds(0.10, 0.20, True, True), "share",
    "Category frequency shift", applies_to=_CATEGORICAL))
MISSING_VALUE_DENSITY_CHANGE = _declare(MetricSpec(
    "missing_value_density_change", DATA, Scope.FEATURE, _HIGHER, Bounds(0.05, 0.15, True, True), "share",
    "Missing-value density change", applies_to=_EVERY_KIND))
# fairness (judged on the current level)
DEMOGRAPHIC_PARITY = _declare(MetricSpec(
    "demographic_parity", FAIRNESS, Scope.ATTRIBUTE, _HIGHER, Bounds(0.05, 0.10), "rate gap", "Demographic parity",
    aliases=("demographic_parity_drift",), group_rate=SELECTION_RATE))
EQUAL_OPPORTUNITY = _declare(MetricSpec(
    "equal_opportunity", FAIRNESS, Scope.ATTRIBUTE, _HIGHER, Bounds(0.05, 0.10), "rate gap", "Equal opportunity",
    needs_labels=True, aliases=("equal_opportunity_drift",), group_rate=TRUE_POSITIVE_RATE))
DISPARATE_IMPACT = _declare(MetricSpec(
    "disparate_impact", FAIRNESS, Scope.ATTRIBUTE, _LOWER, Bounds(0.90, 0.80), "ratio", "Disparate impact",
    group_rate=SELECTION_RATE))
# model drift
PREDICTION_DISTRIBUTION_SHIFT = _declare(MetricSpec(
    "prediction_distribution_shift", MODEL, Scope.MODEL, _HIGHER, Bounds(0.20, 0.40), "share",
    "Prediction distribution shift"))
ACCURACY_DROP = _declare(MetricSpec(
    "accuracy_drop", MODEL, Scope.MODEL, _HIGHER, Bounds(0.05, 0.10), "accuracy points", "Accuracy drop",
    needs_labels=True))
OUTPUT_ENTROPY_CHANGE = _declare(MetricSpec(
    "output_entropy_change", MODEL, Scope.MODEL, _HIGHER, Bounds(0.25, 0.50), "relative change",
    "Output entropy change"))
PREDICTION_VOLATILITY = _declare(MetricSpec(
    "prediction_volatility", MODEL, Scope.MODEL, _HIGHER, Bounds(0.10, 0.20), "rate std", "Prediction volatility"))
# explanation drift
SHAP_KL_DIVERGENCE = _declare(MetricSpec(
    "shap_kl_divergence", EXPLANATION, Scope.MODEL, _HIGHER, Bounds(0.10, 0.30, True, True), "nats",
    "SHAP importance KL", needs_shap=True))
TOP_FEATURES_CHANGE = _declare(MetricSpec(
    "top_features_change", EXPLANATION, Scope.MODEL, _HIGHER, Bounds(2, 3, True, True), "features",
    "Top-features change", needs_shap=True))
RANK_CORRELATION = _declare(MetricSpec(
    "rank_correlation", EXPLANATION, Scope.MODEL, _LOWER, Bounds(0.80, 0.60), "Spearman rho",
    "Importance rank correlation", needs_shap=True))
# policy 2.3: the aggregated score is CRITICAL above 0.30 (it has no WARNING band)
AGGREGATED_SCORE = _declare(MetricSpec(
    "aggregated_score", None, Scope.MODEL, _HIGHER, Bounds(0.30, 0.30), "score", "Aggregated score"))

METRICS: MappingProxyType[str, MetricSpec] = MappingProxyType(_REGISTRY)
"""Every metric by name, in declaration order."""


def metrics_of(category: Category) -> tuple[MetricSpec, ...]:
    return tuple(m for m in METRICS.values() if m.category == category)


def category_weights() -> dict[str, float]:
    return {c.name: c.weight for c in CATEGORIES}


def base_name(metric_name: str) -> str:
    """``psi:income`` -> ``psi``: the metric of an incident or alert metric name."""
    return metric_name.split(":", 1)[0]


def spec_of(metric_name: str) -> MetricSpec | None:
    """The metric an incident or alert metric name refers to (aliases included)."""
    name = base_name(metric_name)
    return METRICS.get(name) or next((m for m in METRICS.values() if name in m.aliases), None)


def item_name(spec: MetricSpec, item: str | None = None) -> str:
    """The stable name of one metric item: ``psi:income``, ``demographic_parity:gender``."""
    return spec.name if item is None else f"{spec.name}:{item}"
