"""``monitoring_records``: the metrics of one analysis run of one model.

Keeps the source schema's field names and blocks (``data_drift``, ``fairness_drift``,
``model_drift``, ``explanation_drift``, ``data_quality``). Every metric value carries its
``value`` (None when it could not be computed), ``severity``, ``available`` and the
``reason`` when not, the ``threshold`` it was judged against and the counts it rests on.

Metrics that exist per feature or per protected attribute keep every item in a map and,
where the schema has a single value, the worst item (naming its feature or attribute).
:meth:`MonitoringRecord.breaches` flattens every WARNING/CRITICAL item into stable
metric names (``psi:credit_score``, ``demographic_parity:gender``) for the incidents module.
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import AfterValidator, Field, create_model, model_validator

from ..clock import now
from . import metric_registry as reg
from .common import Document, Part, Severity, UtcDatetime, finite_or_none, new_id
from .incidents import TriggeredMetric
from .metric_registry import AGGREGATED_SCORE, CATEGORIES, Category, MetricSpec, Scope, item_name, metrics_of
from .thresholds import Threshold

Number = Annotated[float | None, AfterValidator(finite_or_none)]


class Reason(enum.StrEnum):
    """Why a metric has no value in this run."""

    INSUFFICIENT_DATA = "insufficient_data"
    NO_GROUND_TRUTH = "no_ground_truth"
    NO_BASELINE_LABELS = "no_baseline_labels"
    NO_BASELINE_DATA = "no_baseline_data"
    MISSING_COLUMN = "missing_column"
    CONSTANT_REFERENCE = "constant_reference"
    NO_POSITIVE_PREDICTIONS = "no_positive_predictions"
    NO_POSITIVE_LABELS = "no_positive_labels"
    TOO_FEW_GROUPS = "too_few_groups"
    UNKNOWN_POSITIVE_CLASS = "unknown_positive_class"
    NO_EXPLANATIONS = "no_explanations"
    NO_OUTPUT_SCORES = "no_output_scores"
    NO_TIMESTAMPS = "no_timestamps"
    UNDEFINED = "undefined"
    NOT_APPLICABLE = "not_applicable"
    INVALID_INPUT = "invalid_input"


class MetricValue(Part):
    value: Number = None
    severity: Severity = Severity.INFO
    available: bool = True
    reason: Reason | None = None
    detail: str | None = Field(default=None, description="human-readable note, e.g. why unavailable")
    threshold: Threshold | None = None
    sample_count: int | None = Field(default=None, ge=0, description="current values the metric rests on")

    @model_validator(mode="after")
    def _unavailable_has_reason(self) -> MetricValue:
        if not self.available:
            if self.reason is None:
                raise ValueError("an unavailable metric needs a reason")
            if self.value is not None or self.severity is not Severity.INFO:
                raise ValueError("an unavailable metric has no value and no severity")
        elif self.value is None:
            raise ValueError("an available metric needs a value")
        return self


class FeatureMetric(MetricValue):
    """A drift value of one feature."""

    feature: str
    reference_count: int | None = Field(default=None, ge=0)


class WorstFeatureMetric(MetricValue):
    """Max over features (KL, Wasserstein); ``feature`` names the one that produced it."""

    feature: str | None = None
    by_feature: dict[str, FeatureMetric] = Field(default_factory=dict)


class FairnessValue(MetricValue):
    """A fairness metric of one protected attribute (or intersection), judged on its current level.

    ``group_rates``/``group_counts``: selection rate and rows per group (DP, DI) or TPR and
    labelled positives per group (EO). ``insufficient_groups`` were left out for having
    fewer than ``min_group_size`` of those rows.

    Statistical significance (spec section 2): ``p_value`` of the homogeneity test of the
    rates over the groups used (``test_method`` ``chi2`` or ``permutation``) and
    ``p_value_adjusted``, Holm-adjusted over the run's fairness tests. ``point_severity``
    is the severity of the value alone; a value beyond a threshold whose adjusted p-value is
    not below the model's ``fairness_alpha`` is ``inconclusive``, with severity INFO (a
    possible breach the data do not yet establish), ``smallest_group_count`` telling how
    little data it rests on.
    """

    attribute: str | None = None
    baseline_value: Number = None
    change: Number = None
    affected_groups: list[str] = Field(default_factory=list)
    ci_low: Number = None
    ci_high: Number = None
    confidence_level: float | None = None
    group_rates: dict[str, float] = Field(default_factory=dict)
    group_counts: dict[str, int] = Field(default_factory=dict)
    insufficient_groups: list[str] = Field(default_factory=list)
    missing_attribute_count: int = Field(default=0, ge=0)
    point_severity: Severity | None = None
    inconclusive: bool = False
    p_value: Number = None
    p_value_adjusted: Number = None
    test_method: str | None = Field(default=None, description="'chi2' or 'permutation'")
    smallest_group_count: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _inconclusive_is_info(self) -> FairnessValue:
        if self.inconclusive and self.severity is not Severity.INFO:
            raise ValueError("an inconclusive fairness value has severity INFO")
        return self


class FairnessMetric(FairnessValue):
    """The worst attribute's value (in the schema's fields) plus every attribute."""

    by_attribute: dict[str, FairnessValue] = Field(default_factory=dict)


class PredictionShift(MetricValue):
    current_distribution: dict[str, float] = Field(default_factory=dict)


class AccuracyDrop(MetricValue):
    baseline_accuracy: Number = None
    current_accuracy: Number = None
    labelled_count: int = Field(default=0, ge=0)


class EntropyChange(MetricValue):
    baseline_entropy: Number = None
    current_entropy: Number = None
    source: str | None = Field(default=None, description="'probabilities' or 'confidence'")


class PredictionVolatility(MetricValue):
    chunk_count: int = Field(default=0, ge=0, description="hourly chunks in the window")
    chunks_used: int = Field(default=0, ge=0, description="chunks with enough predictions")


class TopFeaturesChange(MetricValue):
    """``value`` = how many of the baseline's top features left the top list."""

    old: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)


# The record's value type of each metric: by scope, unless a metric carries more fields.
_VALUE_TYPES: dict[Scope, type[MetricValue]] = {
    Scope.WORST_FEATURE: WorstFeatureMetric, Scope.ATTRIBUTE: FairnessMetric, Scope.MODEL: MetricValue}
_SPECIAL_VALUE_TYPES: dict[str, type[MetricValue]] = {
    reg.PREDICTION_DISTRIBUTION_SHIFT.name: PredictionShift, reg.ACCURACY_DROP.name: AccuracyDrop,
    reg.OUTPUT_ENTROPY_CHANGE.name: EntropyChange, reg.PREDICTION_VOLATILITY.name: PredictionVolatility,
    reg.TOP_FEATURES_CHANGE.name: TopFeaturesChange}


def _field(spec: MetricSpec) -> tuple:
    if spec.scope is Scope.FEATURE:
        # The schema stores a bare number per feature for the missing-value change; the map
        # keeps each value with its severity like every other metric.
        return dict[str, FeatureMetric], Field(default_factory=dict)
    return _SPECIAL_VALUE_TYPES.get(spec.name, _VALUE_TYPES[spec.scope]), ...


def _block(category: Category, class_name: str) -> type[Part]:
    """The record block of a category: one field per metric of the registry."""
    return create_model(class_name, __base__=Part, __module__=__name__,
                        **{spec.name: _field(spec) for spec in metrics_of(category)})


DataDrift = _block(CATEGORIES[0], "DataDrift")
FairnessDrift = _block(CATEGORIES[1], "FairnessDrift")
ModelDrift = _block(CATEGORIES[2], "ModelDrift")
ExplanationDrift = _block(CATEGORIES[3], "ExplanationDrift")
BLOCKS: dict[str, type[Part]] = dict(zip((c.name for c in CATEGORIES),
                                         (DataDrift, FairnessDrift, ModelDrift, ExplanationDrift)))


class FeatureQuality(Part):
    missing: int = Field(default=0, ge=0)
    type_mismatches: int = Field(default=0, ge=0)
    range_violations: int = Field(default=0, ge=0)
    non_finite: int = Field(default=0, ge=0, description="±inf values (also counted as range violations)")


class DataQuality(Part):
    """Counts over the window. Offending values are left out of the metrics they would corrupt."""

    schema_violations: int = Field(default=0, ge=0)
    type_mismatches: int = Field(default=0, ge=0)
    range_violations: int = Field(default=0, ge=0)
    unknown_labels: int = Field(default=0, ge=0, description="predictions or ground truths outside the known classes")
    invalid_outputs: int = Field(default=0, ge=0, description="rows with non-finite or out-of-[0,1] scores")
    missing_features: list[str] = Field(default_factory=list)
    unexpected_features: list[str] = Field(default_factory=list)
    by_feature: dict[str, FeatureQuality] = Field(default_factory=dict)


class Histogram(Part):
    """Shares per bin of the baseline and of the run's window: what a chart needs, so the
    pages draw distributions from records, never from raw predictions."""

    bins: list[str]
    baseline: list[float] | None = None
    current: list[float]

    @model_validator(mode="after")
    def _one_share_per_bin(self) -> Histogram:
        for side in (self.baseline, self.current):
            if side is not None and len(side) != len(self.bins):
                raise ValueError(f"{len(side)} shares for {len(self.bins)} bins")
        return self


class Distributions(Part):
    """Per feature: its drift bins (the baseline's quantile bins or categories, new
    categories added); the predicted classes; the confidence in ten equal bins over [0, 1]."""

    features: dict[str, Histogram] = Field(default_factory=dict)
    predicted_classes: Histogram | None = None
    confidence: Histogram | None = None


class RecordMetrics(Part):
    data_drift: DataDrift
    fairness_drift: FairnessDrift
    model_drift: ModelDrift
    explanation_drift: ExplanationDrift
    data_quality: DataQuality


class AnalysisPeriod(Part):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> AnalysisPeriod:
        if self.start > self.end:
            raise ValueError("analysis period starts after it ends")
        return self


class RunStatus(enum.StrEnum):
    """Whether an analysis run judged the window (``completed``) or could not (``skipped``:
    no active baseline, no predictions, fewer than the model's ``min_window_size``)."""

    COMPLETED = "completed"
    SKIPPED = "skipped"


def unjudged_metrics(reason: Reason, detail: str) -> RecordMetrics:
    """The metrics of a skipped run: every metric unavailable for the same ``reason``."""
    def nothing(spec: MetricSpec):
        kind, _ = _field(spec)
        return {} if spec.scope is Scope.FEATURE else kind(available=False, reason=reason, detail=detail)

    return RecordMetrics(data_quality=DataQuality(), **{
        c.record_block: BLOCKS[c.name](**{spec.name: nothing(spec) for spec in metrics_of(c)}) for c in CATEGORIES})


class MonitoringRecord(Document):
    record_id: str = Field(default_factory=lambda: new_id("REC"), min_length=1)
    model_id: str = Field(min_length=1)
    analysis_period: AnalysisPeriod
    timestamp: UtcDatetime = Field(default_factory=now)
    sample_count: int = Field(ge=0)
    baseline_snapshot_id: str | None = None
    metrics: RecordMetrics
    aggregated_score: float = Field(ge=0, le=1)
    category_scores: dict[str, float] = Field(default_factory=dict,
                                              description="data/fairness/model/explanation scores in [0, 1]")
    unavailable_categories: list[str] = Field(
        default_factory=list, description="categories with no available metric (they contribute 0)")
    metric_scores: dict[str, float] = Field(
        default_factory=dict, description="each available metric item's score (psi:income, accuracy_drop...)")
    aggregated_score_threshold: Threshold | None = Field(
        default=None, description="policy 2.3: the score alone is CRITICAL beyond this")
    max_severity: Severity
    distributions: Distributions = Field(default_factory=Distributions)
    incident_ids: list[str] = Field(default_factory=list)
    analyzer_version: str | None = None
    execution_time_ms: float | None = Field(default=None, ge=0)
    # -- the run's outcome (monitoring_core.analysis) --------------------------------------
    status: RunStatus = RunStatus.COMPLETED
    reason: str | None = Field(default=None, description="why a skipped run judged nothing")

    @model_validator(mode="after")
    def _skipped_judges_nothing(self) -> MonitoringRecord:
        if self.status is RunStatus.SKIPPED:
            if not self.reason:
                raise ValueError("reason: a skipped run must say why")
            if self.max_severity is not Severity.INFO or self.aggregated_score or self.incident_ids:
                raise ValueError("a skipped run has no severity, no score and no incident")
        elif self.reason is not None:
            raise ValueError("reason: only a skipped run has a reason")
        return self

    def breaches(self) -> list[TriggeredMetric]:
        """Every metric item at WARNING or CRITICAL, plus the aggregated score when it is."""
        return [b for b in _breaches(self) if b is not None]



def metric_items(block: Part, category: Category):
    """``(spec, item, feature or attribute)`` for every item of a record block (each
    feature's, each attribute's; not the worst-item summaries)."""
    for spec in metrics_of(category):
        value = getattr(block, spec.name)
        if spec.scope is Scope.FEATURE:
            items = value
        elif spec.scope is Scope.WORST_FEATURE:
            items = value.by_feature
        elif spec.scope is Scope.ATTRIBUTE:
            items = value.by_attribute
        else:
            yield spec, value, None
            continue
        for name, item in items.items():
            yield spec, item, name


def _breach(spec: MetricSpec, metric: MetricValue, item: str | None) -> TriggeredMetric | None:
    if metric.severity is Severity.INFO or metric.value is None or metric.threshold is None:
        return None
    extra = {}
    if spec.scope in (Scope.FEATURE, Scope.WORST_FEATURE):
        extra = dict(feature=item)
    elif spec.scope is Scope.ATTRIBUTE:
        extra = dict(attribute=item, affected_groups=list(metric.affected_groups), ci_low=metric.ci_low,
                     ci_high=metric.ci_high)
    return TriggeredMetric(metric_name=item_name(spec, item), value=metric.value,
                           threshold=metric.threshold.bound_for(metric.severity), severity=metric.severity,
                           **extra)


def _breaches(record: MonitoringRecord):
    for category in CATEGORIES:
        for spec, item, name in metric_items(getattr(record.metrics, category.record_block), category):
            yield _breach(spec, item, name)
    if record.aggregated_score_threshold is not None:
        overall = record.aggregated_score_threshold.severity(record.aggregated_score)
        yield _breach(AGGREGATED_SCORE, MetricValue(value=record.aggregated_score, severity=overall,
                                                    threshold=record.aggregated_score_threshold), None)
