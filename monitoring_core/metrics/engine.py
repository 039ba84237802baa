"""The one entry point: every metric of a window against a baseline, as a monitoring record.

:func:`compute_metrics` reads a canonical window (column names from
:mod:`monitoring_core.models.columns`), compares it with a
:class:`~monitoring_core.models.baseline.DriftSnapshot` under a model's
:class:`~monitoring_core.models.thresholds.MonitoringConfig`, and returns a
:class:`~monitoring_core.models.record.MonitoringRecord` ready to store.

It never raises on bad data in the window: wrong types, infinities, unknown labels and
missing columns become data-quality counts or metrics marked unavailable with a reason
(the converters count bad cells; a kernel that refuses its input raises
:class:`InvalidInput`, which becomes that metric's reason). A caller's mistake (a window
that is not a DataFrame) raises :class:`InvalidInput`; any other exception is a bug and
propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

import numpy as np
import pandas as pd

from ..clock import now
from ..errors import InvalidInput
from ..models import columns as col
from ..models import metric_registry as reg
from ..models.baseline import DriftSnapshot, FeatureDistribution
from ..models.common import Severity
from ..models.metric_registry import CATEGORIES, DATA, EXPLANATION, FAIRNESS, MODEL, Scope, item_name, metrics_of
from ..models.record import (
    AccuracyDrop,
    AnalysisPeriod,
    DataDrift,
    DataQuality,
    Distributions,
    EntropyChange,
    ExplanationDrift,
    FairnessDrift,
    FairnessMetric,
    FairnessValue,
    FeatureMetric,
    FeatureQuality,
    Histogram,
    MetricValue,
    ModelDrift,
    MonitoringRecord,
    PredictionShift,
    PredictionVolatility,
    Reason,
    RecordMetrics,
    TopFeaturesChange,
    WorstFeatureMetric,
    metric_items,
)
from ..models.thresholds import MonitoringConfig, Threshold, ThresholdSet
from .drift import (
    category_proportions,
    kl_from_proportions,
    numeric_bin_labels,
    numeric_proportions,
    psi_from_proportions,
    total_variation,
    wasserstein_to_grid,
)
from .explanation import TOP_K, normalised, rank_correlation, shap_kl_divergence, top_features_change
from .fairness import (
    METRICS,
    RATE_OF,
    GroupGap,
    GroupTable,
    ProtectedGroups,
    RateTest,
    affected_groups,
    assess,
    attribute_table,
    bootstrap_intervals,
    holm,
    homogeneity_test,
    pairwise_p_values,
    protected_groups,
    rate_counts,
    smallest_group,
)
from .labels import LabelProblem, positive_class_problem
from .model import MIN_CHUNKS, chunks_by_hour, distribution_shift, net_volatility, output_entropy_change
from .outputs import (
    Outputs,
    confidence_bin_labels,
    confidence_histogram,
    entropy_sources,
    explanation_names,
    output_entropy,
    read_outputs,
    read_shap,
)
from .quality import categorical_column, numeric_column, range_violations, schema_violations
from .severity import (
    aggregated_score,
    category_score,
    judged,
    metric_score,
    overall_severity,
    significant_severity,
    unavailable,
)

ANALYZER_VERSION = "fairwatch-metrics/1"

M = TypeVar("M", bound=MetricValue)


def required_columns(baseline: DriftSnapshot, config: MonitoringConfig) -> list[str]:
    """The window columns :func:`compute_metrics` reads, for a storage query that reads only those.

    Probability columns (``prediction.probabilities.<class>``) are named for the baseline's
    classes; pass any others the store has as well.
    """
    names = [col.TIMESTAMP, col.PREDICTED_CLASS, col.CONFIDENCE, col.GROUND_TRUTH]
    names += [col.feature(f) for f in baseline.feature_distributions]
    names += [col.protected(a) for a in config.protected_attributes]
    names += [col.protected(a) for combination in config.intersections for a in combination]
    names += [col.probability(c) for c in baseline.prediction_distribution]
    names += [col.explanation(f) for f in baseline.shap_distributions]
    return list(dict.fromkeys(names))


def compute_metrics(window: pd.DataFrame, baseline: DriftSnapshot, config: MonitoringConfig, *,
                    period_start: datetime | None = None, period_end: datetime | None = None,
                    model_id: str | None = None) -> MonitoringRecord:
    """Compute every metric of ``window`` against ``baseline``.

    Parameters
    ----------
    window : DataFrame
        Canonical prediction window (only the columns of :func:`required_columns` are read;
        any missing column makes the metrics that need it unavailable).
    baseline : DriftSnapshot
        The model's active baseline.
    config : MonitoringConfig
        Risk level (selects the threshold set), positive label, protected attributes and
        their intersections, minimum sizes, bins, eps, bootstrap and test settings
        (``fairness_alpha``: family-wise error rate of the run's fairness tests).
    period_start, period_end : datetime, optional
        The analysed period; default the window's first and last timestamp.
    model_id : str, optional
        Default ``baseline.model_id``.

    Returns
    -------
    MonitoringRecord
        Every metric with value, severity, availability and reason, the data-quality
        counts, each metric's score, the category scores (and the unavailable
        categories), the aggregated score and the maximum severity.
    """
    started = time.perf_counter()
    if not isinstance(window, pd.DataFrame):
        raise InvalidInput(f"the window must be a pandas DataFrame, got {type(window).__name__}")
    window = _usable_columns(window)
    thresholds = config.active_thresholds

    data_drift, feature_quality, histograms = _data_drift(window, baseline, config, thresholds)
    outputs = read_outputs(window, config.positive_label, _known_labels(baseline, config))
    label_problem = positive_class_problem(config.positive_label, outputs, set(baseline.known_labels),
                                           "the classes seen (window predictions and labels, baseline)")
    fairness, attribute_mismatches = _fairness_drift(window, baseline, outputs, config, thresholds, label_problem)
    model_drift, invalid_outputs = _model_drift(window, baseline, outputs, config, thresholds, label_problem)
    explanation, invalid_shap = _explanation_drift(window, baseline, config, thresholds)
    quality = DataQuality(
        **feature_quality,
        type_mismatches=sum(q.type_mismatches for q in feature_quality["by_feature"].values()) + attribute_mismatches,
        range_violations=sum(q.range_violations for q in feature_quality["by_feature"].values()),
        unknown_labels=outputs.unknown_predictions + outputs.unknown_truths,
        invalid_outputs=invalid_outputs + invalid_shap,
    )

    blocks = {DATA: data_drift, FAIRNESS: fairness, MODEL: model_drift, EXPLANATION: explanation}
    items = {c.name: list(metric_items(blocks[c], c)) for c in CATEGORIES}
    metric_scores = {c: {item_name(spec, name): metric_score(item, spec) for spec, item, name in found
                         if item.available} for c, found in items.items()}
    scores = {c: category_score(s.values()) for c, s in metric_scores.items()}
    score = aggregated_score(scores)
    every_metric = [item for found in items.values() for _, item, _ in found]
    start, end = _period(window, period_start, period_end)
    return MonitoringRecord(
        model_id=model_id or baseline.model_id,
        analysis_period=AnalysisPeriod(start=start, end=end),
        sample_count=len(window),
        baseline_snapshot_id=baseline.snapshot_id,
        metrics=RecordMetrics(data_drift=data_drift, fairness_drift=fairness, model_drift=model_drift,
                              explanation_drift=explanation, data_quality=quality),
        aggregated_score=score,
        category_scores={c: s for c, s in scores.items() if s is not None},
        unavailable_categories=[c for c, s in scores.items() if s is None],
        metric_scores={name: value for by_item in metric_scores.values() for name, value in by_item.items()},
        aggregated_score_threshold=thresholds.aggregated_score,
        max_severity=overall_severity(every_metric, score, thresholds.aggregated_score),
        distributions=Distributions(features=histograms, predicted_classes=_class_histogram(baseline, model_drift),
                                    confidence=_confidence_histogram(window, baseline)),
        analyzer_version=ANALYZER_VERSION,
        execution_time_ms=(time.perf_counter() - started) * 1000.0,
    )


# -- helpers ---------------------------------------------------------------------------------

def _class_histogram(baseline: DriftSnapshot, drift: ModelDrift) -> Histogram | None:
    current = drift.prediction_distribution_shift.current_distribution
    if not current and not baseline.prediction_distribution:
        return None
    classes = list(dict.fromkeys([*baseline.prediction_distribution, *current]))
    return Histogram(bins=classes, baseline=[baseline.prediction_distribution.get(c, 0.0) for c in classes],
                     current=[current.get(c, 0.0) for c in classes])


def _confidence_histogram(window: pd.DataFrame, baseline: DriftSnapshot) -> Histogram | None:
    current = confidence_histogram(window)
    if current is None:
        return None
    return Histogram(bins=confidence_bin_labels(), baseline=baseline.confidence_histogram, current=current.tolist())


def _guarded(kind: type[M], threshold: Threshold | None, compute: Callable[[], M], *,
             reason: Reason = Reason.INVALID_INPUT, **fields) -> M:
    """Run ``compute``; data it cannot judge becomes an unavailable metric with the message."""
    try:
        return compute()
    except InvalidInput as exc:
        return unavailable(kind, reason, threshold, str(exc), **fields)


def _usable_columns(window: pd.DataFrame) -> pd.DataFrame:
    """Only text-named columns, the first of any duplicated name (no data is copied)."""
    names = window.columns
    keep = np.array([isinstance(c, str) for c in names]) & ~names.duplicated()
    return window if keep.all() else window.loc[:, keep]


def _known_labels(baseline: DriftSnapshot, config: MonitoringConfig) -> set[str] | None:
    """Classes the model may output; others are counted as unknown labels."""
    if config.class_labels is not None:
        return set(config.class_labels)
    if baseline.known_labels:
        return set(baseline.known_labels) | {config.positive_label}
    return None


def _period(window: pd.DataFrame, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if (start is None or end is None) and col.TIMESTAMP in window.columns and len(window):
        stamps = pd.to_datetime(window[col.TIMESTAMP], utc=True, errors="coerce").dropna()
        if len(stamps):
            start = start or stamps.min().to_pydatetime()
            end = end or stamps.max().to_pydatetime()
    moment = now()
    start, end = start or end or moment, end or start or moment
    return (start, end) if start <= end else (end, start)


def _worst_feature(items: dict[str, FeatureMetric], threshold: Threshold, empty_reason: Reason,
                   empty_detail: str) -> WorstFeatureMetric:
    """The record's single value for KL / Wasserstein: the max over features, naming it."""
    available = {f: m for f, m in items.items() if m.available}
    if not items:
        return unavailable(WorstFeatureMetric, empty_reason, threshold, empty_detail)
    if not available:
        reasons = {m.reason for m in items.values()}
        reason = reasons.pop() if len(reasons) == 1 else Reason.INSUFFICIENT_DATA
        return unavailable(WorstFeatureMetric, reason, threshold, "no feature had a value in this run",
                           by_feature=items)
    feature, worst = max(available.items(), key=lambda kv: kv[1].value)
    return judged(WorstFeatureMetric, worst.value, threshold, feature=feature, sample_count=worst.sample_count,
                  by_feature=items)


# -- data drift and quality --------------------------------------------------------------------

class _FeatureResult:
    def __init__(self):
        self.metrics: dict[str, FeatureMetric] = {}
        self.quality = FeatureQuality()
        self.histogram: Histogram | None = None


def _data_drift(window: pd.DataFrame, baseline: DriftSnapshot, config: MonitoringConfig,
                thresholds: ThresholdSet) -> tuple[DataDrift, dict]:
    """Drift per feature, and the per-feature data-quality fields of the record."""
    expected = [col.feature(f) for f in baseline.feature_distributions]
    present = [c for c in window.columns if c.startswith(col.FEATURE_PREFIX)]
    families: dict[str, dict[str, FeatureMetric]] = {spec.name: {} for spec in metrics_of(DATA)}
    by_feature: dict[str, FeatureQuality] = {}
    histograms: dict[str, Histogram] = {}
    for name, reference in baseline.feature_distributions.items():
        result = _feature_drift(window, name, reference, config, thresholds)
        for family, metric in result.metrics.items():
            families[family][name] = metric
        by_feature[name] = result.quality
        if result.histogram is not None:
            histograms[name] = result.histogram
    kinds = {d.dtype for d in baseline.feature_distributions.values()}
    drift = DataDrift(**{
        spec.name: families[spec.name] if spec.scope is Scope.FEATURE
        else _worst_feature(families[spec.name], thresholds[spec.name], *_no_feature_reason(spec, kinds))
        for spec in metrics_of(DATA)})
    quality = dict(
        schema_violations=schema_violations(window, expected, present),
        missing_features=sorted(c[len(col.FEATURE_PREFIX):] for c in set(expected) - set(present)),
        unexpected_features=sorted(c[len(col.FEATURE_PREFIX):] for c in set(present) - set(expected)),
        by_feature=by_feature,
    )
    return drift, quality, histograms


def _no_feature_reason(spec: reg.MetricSpec, kinds: set[str]) -> tuple[Reason, str]:
    """Why a worst-feature metric has no item at all."""
    if not kinds:
        return Reason.NO_BASELINE_DATA, "the baseline has no feature"
    return Reason.NOT_APPLICABLE, f"the baseline has no feature of kind {sorted(spec.applies_to)}"


def _feature_drift(window: pd.DataFrame, name: str, reference: FeatureDistribution, config: MonitoringConfig,
                   thresholds: ThresholdSet) -> _FeatureResult:
    result = _FeatureResult()
    column = col.feature(name)
    if column not in window.columns:
        detail = f"the window has no column {column!r}"
        for spec in metrics_of(DATA):
            if reference.dtype in spec.applies_to:
                result.metrics[spec.name] = unavailable(FeatureMetric, Reason.MISSING_COLUMN, thresholds[spec.name],
                                                        detail, feature=name)
        return result
    if reference.is_numerical:
        return _numerical_feature(window[column], name, reference, config, thresholds, result)
    return _categorical_feature(window[column], name, reference, config, thresholds, result)


def _missing_change(name: str, rows: int, missing: int, reference: FeatureDistribution, config: MonitoringConfig,
                    threshold: Threshold) -> FeatureMetric:
    # The missing rate's denominator is the row count, so the minimum sample applies to rows:
    # an all-missing feature must still raise its alarm.
    fields = dict(feature=name, sample_count=rows, reference_count=reference.sample_count + reference.missing_count)
    if rows < config.min_window_size:
        return unavailable(FeatureMetric, Reason.INSUFFICIENT_DATA, threshold,
                           f"{rows} rows, fewer than min_window_size={config.min_window_size}", **fields)
    return judged(FeatureMetric, missing / rows - reference.missing_rate, threshold, **fields)


def _enough(result: _FeatureResult, name: str, count: int, reference: FeatureDistribution,
            config: MonitoringConfig, thresholds: ThresholdSet, families: Iterable[str]) -> bool:
    """Whether drift can be judged; otherwise mark ``families`` unavailable and say why."""
    fields = dict(feature=name, sample_count=count, reference_count=reference.sample_count)
    if reference.sample_count == 0:
        reason, detail = Reason.NO_BASELINE_DATA, "the baseline holds no value of this feature"
    elif count < config.min_window_size:
        reason = Reason.INSUFFICIENT_DATA
        detail = f"{count} non-missing values, fewer than min_window_size={config.min_window_size}"
    else:
        return True
    for family in families:
        result.metrics[family] = unavailable(FeatureMetric, reason, thresholds[family], detail, **fields)
    return False


def _numerical_feature(series: pd.Series, name: str, reference: FeatureDistribution, config: MonitoringConfig,
                       thresholds: ThresholdSet, result: _FeatureResult) -> _FeatureResult:
    values = numeric_column(series)
    s = np.sort(values.values)
    out_of_range = values.non_finite
    if reference.min is not None and reference.max is not None:
        out_of_range += range_violations(s, reference.min, reference.max)
    result.quality = FeatureQuality(missing=values.missing, type_mismatches=values.type_mismatches,
                                    range_violations=out_of_range, non_finite=values.non_finite)
    result.metrics[reg.MISSING_VALUE_DENSITY_CHANGE.name] = _missing_change(
        name, values.rows, values.missing, reference, config, thresholds[reg.MISSING_VALUE_DENSITY_CHANGE.name])
    if not _enough(result, name, s.size, reference, config, thresholds,
                   (reg.PSI.name, reg.KL_DIVERGENCE.name, reg.WASSERSTEIN_DISTANCE.name)):
        return result
    fields = dict(feature=name, sample_count=int(s.size), reference_count=reference.sample_count)
    ref_p = np.asarray(reference.bin_proportions, dtype=float)
    cur_p = numeric_proportions(np.asarray(reference.bin_edges, dtype=float), s)
    result.histogram = Histogram(bins=numeric_bin_labels(reference.bin_edges), baseline=ref_p.tolist(),
                                 current=cur_p.tolist())
    _judge_proportions(result, ref_p, cur_p, config, thresholds, fields)
    threshold = thresholds[reg.WASSERSTEIN_DISTANCE.name]
    result.metrics[reg.WASSERSTEIN_DISTANCE.name] = _guarded(
        FeatureMetric, threshold, lambda: _wasserstein(s, reference, threshold, fields), **fields)
    return result


def _judge_proportions(result: _FeatureResult, ref_p: np.ndarray, cur_p: np.ndarray, config: MonitoringConfig,
                       thresholds: ThresholdSet, fields: dict, *, categorical: bool = False) -> None:
    """PSI and KL of a feature's binned proportions (and the frequency shift of a categorical one)."""
    values = {reg.PSI.name: psi_from_proportions(ref_p, cur_p, config.eps),
              reg.KL_DIVERGENCE.name: kl_from_proportions(ref_p, cur_p, config.eps)}
    if categorical:
        values[reg.CATEGORY_FREQUENCY_SHIFT.name] = total_variation(ref_p, cur_p)
    for metric, value in values.items():
        result.metrics[metric] = judged(FeatureMetric, value, thresholds[metric], **fields)


def _wasserstein(s: np.ndarray, reference: FeatureDistribution, threshold: Threshold, fields: dict) -> FeatureMetric:
    if not reference.std:
        # Constant reference: the scale-free distance is 0 for an identical constant, else undefined.
        if s[0] == s[-1] == reference.min:
            return judged(FeatureMetric, 0.0, threshold, **fields)
        return unavailable(FeatureMetric, Reason.CONSTANT_REFERENCE, threshold,
                           "the reference is constant, so a distance relative to its std is undefined", **fields)
    return judged(FeatureMetric, wasserstein_to_grid(reference.quantile_grid, s) / reference.std, threshold,
                  **fields)


def _categorical_feature(series: pd.Series, name: str, reference: FeatureDistribution, config: MonitoringConfig,
                         thresholds: ThresholdSet, result: _FeatureResult) -> _FeatureResult:
    values = categorical_column(series, boolean=reference.dtype == "boolean")
    result.quality = FeatureQuality(missing=values.missing, type_mismatches=values.type_mismatches)
    result.metrics[reg.MISSING_VALUE_DENSITY_CHANGE.name] = _missing_change(
        name, values.rows, values.missing, reference, config, thresholds[reg.MISSING_VALUE_DENSITY_CHANGE.name])
    total = int(values.counts().sum())
    if not _enough(result, name, total, reference, config, thresholds,
                   (reg.PSI.name, reg.KL_DIVERGENCE.name, reg.CATEGORY_FREQUENCY_SHIFT.name)):
        return result
    fields = dict(feature=name, sample_count=total, reference_count=reference.sample_count)
    categories, ref_p, cur_p = category_proportions(reference.frequencies or {}, values)
    result.histogram = Histogram(bins=categories, baseline=ref_p.tolist(), current=cur_p.tolist())
    _judge_proportions(result, ref_p, cur_p, config, thresholds, fields, categorical=True)
    return result


# -- fairness ----------------------------------------------------------------------------------

def _fairness_drift(window: pd.DataFrame, baseline: DriftSnapshot, outputs: Outputs, config: MonitoringConfig,
                    thresholds: ThresholdSet, label_problem: LabelProblem | None) -> tuple[FairnessDrift, int]:
    """Every fairness metric of every attribute and intersection, judged on practical and
    statistical significance: the run's homogeneity tests are Holm-adjusted together."""
    attributes = protected_groups(window, config.protected_attributes, config.intersections)
    mismatches = sum(g.column.type_mismatches for g in attributes.values() if g.column is not None)
    assessed = {name: _assess_attribute(groups, window, outputs, config, label_problem)
                for name, groups in attributes.items()}
    family = {(name, rate): test for name, a in assessed.items() if isinstance(a, _Assessed)
              for rate, test in a.tests.items()}
    adjusted = dict(zip(family, holm([t.p_value for t in family.values()]).tolist()))
    by_metric: dict[str, dict[str, FairnessValue]] = {m: {} for m in METRICS}
    for name, assessment in assessed.items():
        for metric in METRICS:
            if isinstance(assessment, _Assessed):
                value = _fairness_value(metric, assessment, adjusted, baseline, config, thresholds[metric])
            else:
                reason, detail = assessment
                value = unavailable(FairnessValue, reason, thresholds[metric], detail, attribute=name,
                                    confidence_level=config.confidence_level)
            by_metric[metric][name] = value
    summary = {metric: _worst_attribute(by_metric[metric], thresholds[metric]) for metric in METRICS}
    return FairnessDrift(**summary), mismatches


class _Assessed:
    """One attribute's count table, gaps, intervals and homogeneity tests (one per rate)."""

    def __init__(self, groups: ProtectedGroups, table: GroupTable, config: MonitoringConfig):
        self.groups, self.table, self.config = groups, table, config
        self.gaps = {m: assess(table, m, config.min_group_size) for m in METRICS}
        self.intervals = bootstrap_intervals(table, self.gaps, resamples=config.bootstrap_resamples,
                                             seed=config.bootstrap_seed, confidence_level=config.confidence_level,
                                             stream=groups.name)
        self.tests = {rate: self._test(rate, gap) for rate, gap in self._gap_per_rate().items()}
        self._pairwise: dict[str, dict[str, float]] = {}

    def _gap_per_rate(self) -> dict[str, GroupGap]:
        """An available gap of each rate (metrics on one rate use the same groups)."""
        gaps = {}
        for metric, gap in self.gaps.items():
            if gap.available:
                gaps.setdefault(RATE_OF[metric], gap)
        return gaps

    def _test(self, rate: str, gap: GroupGap) -> RateTest:
        rows = [self.table.groups.index(g) for g in gap.eligible]
        return homogeneity_test(rate_counts(self.table, rate)[rows], resamples=self.config.permutation_resamples,
                                seed=self.config.bootstrap_seed, stream=f"{self.groups.name}/{rate}")

    def pairwise(self, metric: str) -> dict[str, float]:
        """Holm-adjusted p-value of each group against the best one, computed once per rate."""
        rate = RATE_OF[metric]
        if rate not in self._pairwise:
            self._pairwise[rate] = pairwise_p_values(
                self.table, self.gaps[metric], resamples=self.config.permutation_resamples,
                seed=self.config.bootstrap_seed, stream=f"{self.groups.name}/{rate}/pairwise")
        return self._pairwise[rate]


def _assess_attribute(groups: ProtectedGroups, window: pd.DataFrame, outputs: Outputs, config: MonitoringConfig,
                      label_problem: LabelProblem | None) -> _Assessed | tuple[Reason, str]:
    """The attribute's assessment, or why none of its metrics can be computed."""
    if groups.column is None:
        return Reason.MISSING_COLUMN, f"the window has no column {groups.missing_column!r}"
    if col.PREDICTED_CLASS not in window.columns:
        return Reason.MISSING_COLUMN, f"the window has no column {col.PREDICTED_CLASS!r}"
    if label_problem:
        return _label_reason(label_problem), label_problem.message
    return _Assessed(groups, attribute_table(outputs, groups.column), config)


def _fairness_value(metric: str, assessed: _Assessed, adjusted: dict[tuple[str, str], float],
                    baseline: DriftSnapshot, config: MonitoringConfig, threshold: Threshold) -> FairnessValue:
    groups, gap = assessed.groups, assessed.gaps[metric]
    reference = baseline.fairness_metrics.get(groups.name)
    comparable = reference is not None and baseline.positive_label in (None, config.positive_label)
    baseline_value = getattr(reference, metric) if comparable else None
    fields = dict(attribute=groups.name, confidence_level=config.confidence_level, group_rates=gap.rates,
                  group_counts=gap.counts, baseline_value=baseline_value,
                  insufficient_groups=[groups.label(g) for g in gap.insufficient],
                  missing_attribute_count=groups.column.missing + groups.column.type_mismatches,
                  sample_count=int(sum(gap.counts.get(g, 0) for g in gap.eligible)))
    if not gap.available:
        return unavailable(FairnessValue, gap.reason, threshold, gap.detail, **fields)
    test = assessed.tests[RATE_OF[metric]]
    p_adjusted = adjusted[(groups.name, RATE_OF[metric])]
    point = threshold.severity(gap.value)
    severity = significant_severity(point, p_adjusted, config.fairness_alpha)
    affected = []
    if severity is not Severity.INFO:
        affected = affected_groups(gap, _affected_bound(severity, threshold), assessed.pairwise(metric),
                                   config.fairness_alpha)
    ci = assessed.intervals.get(metric)
    return FairnessValue(
        value=gap.value, severity=severity, threshold=threshold, **fields,
        change=None if baseline_value is None else gap.value - baseline_value,
        inconclusive=severity is not point, point_severity=point, p_value=test.p_value, p_value_adjusted=p_adjusted,
        test_method=test.method, smallest_group_count=smallest_group(gap),
        affected_groups=[groups.label(g) for g in affected],
        ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None)


def _label_reason(problem: LabelProblem) -> Reason:
    """A positive class the window lacks while the baseline has it, or one unknown everywhere."""
    return Reason.NO_POSITIVE_PREDICTIONS if problem.known_elsewhere else Reason.UNKNOWN_POSITIVE_CLASS


def _affected_bound(severity: Severity, threshold: Threshold) -> float | None:
    """Gaps (DP/EO): the WARNING threshold always; ratios where lower is worse (DI): the
    bound of the severity reached (none at INFO)."""
    if threshold.higher_is_worse:
        return threshold.warning
    return threshold.bound_for(severity)


def _worst_attribute(items: dict[str, FairnessValue], threshold: Threshold) -> FairnessMetric:
    """The schema's single value: the attribute with the worst severity, then the worst value."""
    available = {a: v for a, v in items.items() if v.available}
    if not items:
        return unavailable(FairnessMetric, Reason.MISSING_COLUMN, threshold, "no protected attribute is configured")
    if not available:
        reasons = {v.reason for v in items.values()}
        reason = reasons.pop() if len(reasons) == 1 else Reason.INSUFFICIENT_DATA
        details = {f"{a}: {v.detail}" for a, v in items.items()}
        return unavailable(FairnessMetric, reason, threshold, "; ".join(sorted(details)), by_attribute=items)
    sign = 1.0 if threshold.higher_is_worse else -1.0
    worst = max(available.values(), key=lambda v: (v.severity.rank, sign * v.value))
    return FairnessMetric(**worst.model_dump(), by_attribute=items)


# -- model drift -------------------------------------------------------------------------------

def _model_drift(window: pd.DataFrame, baseline: DriftSnapshot, outputs: Outputs, config: MonitoringConfig,
                 thresholds: ThresholdSet, label_problem: LabelProblem | None) -> tuple[ModelDrift, int]:
    entropy, invalid_outputs = _entropy_change(window, baseline, config, thresholds.output_entropy_change)
    drift = ModelDrift(
        prediction_distribution_shift=_prediction_shift(window, baseline, outputs, config,
                                                        thresholds.prediction_distribution_shift),
        accuracy_drop=_accuracy_drop(baseline, outputs, config, thresholds.accuracy_drop, label_problem),
        output_entropy_change=entropy,
        prediction_volatility=_volatility(window, outputs, config, thresholds.prediction_volatility, label_problem),
    )
    return drift, invalid_outputs


def _prediction_shift(window, baseline, outputs: Outputs, config, threshold) -> PredictionShift:
    count = outputs.prediction_count
    current = outputs.class_distribution()
    if col.PREDICTED_CLASS not in window.columns:
        return unavailable(PredictionShift, Reason.MISSING_COLUMN, threshold,
                           f"the window has no column {col.PREDICTED_CLASS!r}")
    if not baseline.prediction_distribution:
        return unavailable(PredictionShift, Reason.NO_BASELINE_DATA, threshold,
                           "the baseline has no prediction distribution", sample_count=count)
    if count < config.min_window_size:
        return unavailable(PredictionShift, Reason.INSUFFICIENT_DATA, threshold,
                           f"{count} predictions, fewer than min_window_size={config.min_window_size}",
                           sample_count=count, current_distribution=current)
    counts = outputs.class_counts_by_name()
    return judged(PredictionShift, distribution_shift(baseline.prediction_distribution, counts), threshold,
                  sample_count=count, current_distribution=current)


def _accuracy_drop(baseline, outputs: Outputs, config, threshold, label_problem: LabelProblem | None) -> AccuracyDrop:
    current, labelled = outputs.accuracy()
    fields = dict(baseline_accuracy=baseline.baseline_accuracy, current_accuracy=current, labelled_count=labelled,
                  sample_count=labelled)
    if label_problem and not label_problem.known_elsewhere:
        # the configured classes do not match the data: accuracy would judge the wrong model
        return unavailable(AccuracyDrop, Reason.UNKNOWN_POSITIVE_CLASS, threshold, label_problem.message, **fields)
    if current is None:
        return unavailable(AccuracyDrop, Reason.NO_GROUND_TRUTH, threshold,
                           "no prediction in the window has ground truth yet", **fields)
    if baseline.baseline_accuracy is None:
        return unavailable(AccuracyDrop, Reason.NO_BASELINE_LABELS, threshold,
                           "the baseline was built without ground truth", **fields)
    if labelled < config.min_window_size:
        return unavailable(AccuracyDrop, Reason.INSUFFICIENT_DATA, threshold,
                           f"{labelled} labelled predictions, fewer than min_window_size={config.min_window_size}",
                           **fields)
    return judged(AccuracyDrop, baseline.baseline_accuracy - current, threshold, **fields)


def _entropy_change(window, baseline: DriftSnapshot, config, threshold) -> tuple[EntropyChange, int]:
    stored = baseline.output_entropy
    # the same source on both sides: probabilities when both have them, else confidence
    source = next((s for s in entropy_sources(window) if getattr(stored, s) is not None), None)
    if source is None:
        return unavailable(EntropyChange, Reason.NO_OUTPUT_SCORES, threshold,
                           "no output scores (probabilities or confidence) logged in both the window "
                           "and the baseline"), 0
    reading = output_entropy(window, source, config.eps)
    reference = getattr(stored, source)
    fields = dict(source=source, baseline_entropy=reference, current_entropy=reading.mean,
                  sample_count=reading.valid_rows)
    invalid = reading.invalid_rows
    if reading.valid_rows < config.min_window_size:
        return unavailable(EntropyChange, Reason.INSUFFICIENT_DATA, threshold,
                           f"{reading.valid_rows} rows with valid scores, fewer than "
                           f"min_window_size={config.min_window_size}", **fields), invalid
    if not reference > 0:
        return unavailable(EntropyChange, Reason.UNDEFINED, threshold, "the baseline entropy is 0", **fields), invalid
    return judged(EntropyChange, output_entropy_change(reference, reading.mean), threshold, **fields), invalid


def _volatility(window, outputs: Outputs, config, threshold,
                label_problem: LabelProblem | None) -> PredictionVolatility:
    if col.TIMESTAMP not in window.columns:
        return unavailable(PredictionVolatility, Reason.NO_TIMESTAMPS, threshold,
                           f"the window has no column {col.TIMESTAMP!r}")
    if label_problem and not label_problem.known_elsewhere:
        return unavailable(PredictionVolatility, Reason.UNKNOWN_POSITIVE_CLASS, threshold, label_problem.message,
                           sample_count=outputs.prediction_count)
    chunks = chunks_by_hour(window[col.TIMESTAMP], outputs, config.min_hourly_chunk)
    fields = dict(chunk_count=chunks.chunk_count, chunks_used=int(chunks.sizes.size),
                  sample_count=outputs.prediction_count)
    if chunks.sizes.size < MIN_CHUNKS:
        return unavailable(PredictionVolatility, Reason.INSUFFICIENT_DATA, threshold,
                           f"{chunks.sizes.size} hourly chunk(s) with at least {config.min_hourly_chunk} "
                           f"predictions; the volatility needs {MIN_CHUNKS}", **fields)
    return judged(PredictionVolatility, net_volatility(chunks), threshold, **fields)


# -- explanation drift -------------------------------------------------------------------------

def _explanation_drift(window: pd.DataFrame, baseline: DriftSnapshot, config: MonitoringConfig,
                       thresholds: ThresholdSet) -> tuple[ExplanationDrift, int]:
    kinds = {name: field.annotation for name, field in ExplanationDrift.model_fields.items()}

    def all_unavailable(reason: Reason, detail: str, **fields) -> ExplanationDrift:
        return ExplanationDrift(**{m: unavailable(k, reason, thresholds[m], detail, **fields)
                                   for m, k in kinds.items()})

    if not baseline.shap_distributions:
        return all_unavailable(Reason.NO_BASELINE_DATA, "the baseline has no SHAP values"), 0
    names = [n for n in explanation_names(window) if n in baseline.shap_distributions]
    if not names:
        return all_unavailable(Reason.NO_EXPLANATIONS, "the window has no SHAP values of the baseline's features"), 0
    shap = read_shap(window, names)
    usable = ~np.isnan(shap.importance)
    names = [n for n, ok in zip(names, usable) if ok]
    current = shap.importance[usable]
    reference = np.array([baseline.shap_distributions[n].mean_abs for n in names])
    if shap.rows < config.min_window_size:
        return all_unavailable(Reason.INSUFFICIENT_DATA, f"{shap.rows} rows with SHAP values, fewer than "
                               f"min_window_size={config.min_window_size}", sample_count=shap.rows), shap.non_finite
    if len(names) < 2:
        return all_unavailable(Reason.INSUFFICIENT_DATA, "fewer than two features with SHAP values on both sides",
                               sample_count=shap.rows), shap.non_finite
    fields = dict(sample_count=shap.rows)

    def kl() -> MetricValue:
        normalised(reference), normalised(current)  # raises when either side sums to 0
        return judged(MetricValue, shap_kl_divergence(reference, current, config.eps),
                      thresholds.shap_kl_divergence, **fields)

    def top() -> TopFeaturesChange:
        count, old, new = top_features_change(reference, current, names, min(TOP_K, len(names)))
        return judged(TopFeaturesChange, count, thresholds.top_features_change, old=old, new=new, **fields)

    def rank() -> MetricValue:
        return judged(MetricValue, rank_correlation(reference, current), thresholds.rank_correlation, **fields)

    drift = ExplanationDrift(
        shap_kl_divergence=_guarded(MetricValue, thresholds.shap_kl_divergence, kl, reason=Reason.UNDEFINED,
                                    **fields),
        top_features_change=_guarded(TopFeaturesChange, thresholds.top_features_change, top, **fields),
        rank_correlation=_guarded(MetricValue, thresholds.rank_correlation, rank, reason=Reason.UNDEFINED,
                                  **fields),
    )
    return drift, shap.non_finite
