"""Building a baseline (:class:`~monitoring_core.models.baseline.DriftSnapshot`) from a frame.

Pure: a canonical DataFrame in, a snapshot out; storing and activating it is the
``baselines`` module's job. The frame uses the prediction-window column names
(:mod:`monitoring_core.models.columns`):

==========================================  ===============================================
``features.<name>``                         one column per model input (required, >= 1)
``prediction.class``                        the model's prediction on the row
``ground_truth``                            the true label (missing: unlabelled)
``metadata.protected_attributes.<attr>``    group per protected attribute in the config
``prediction.probabilities.<class>``        optional, for output entropy
``prediction.confidence``                   optional, for output entropy
``explanation.<name>``                      optional SHAP values, for explanation drift
``timestamp``                               optional; a window's period when built from one
==========================================  ===============================================

Feature kinds come from the frame's dtypes: numbers (int/float) are numerical; booleans
are "boolean" (compared as the categories "True"/"False"); anything else (string, object,
category) is categorical. ``feature_kinds`` overrides this per feature, e.g. for numbers
that arrived as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from ..models import columns as col
from ..models.baseline import (
    AttributeFairness,
    DriftSnapshot,
    FeatureDistribution,
    FeatureKind,
    GroupBaseline,
    OutputEntropy,
    ShapDistribution,
)
from ..models.metric_registry import DEMOGRAPHIC_PARITY
from ..models.thresholds import MonitoringConfig
from .binning import QUANTILE_GRID_SIZE, quantile_bin_edges, quantile_grid, quantiles_of_sorted
from .drift import category_frequencies, numeric_proportions, wasserstein_to_grid
from .fairness import METRICS, assess, attribute_table, protected_groups
from .labels import positive_class_problem
from .outputs import confidence_histogram, entropy_sources, output_entropy, read_outputs
from .quality import categorical_column, numeric_column

SUMMARY_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


def feature_kind(series: pd.Series) -> FeatureKind:
    """numerical for int/float dtypes, boolean for bool, categorical otherwise."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return "numerical"
    return "categorical"


def numerical_distribution(series: pd.Series, bins: int = 10) -> FeatureDistribution:
    """Bins, quantile grid and summary statistics of a numerical column (±inf left out)."""
    column = numeric_column(series)
    rows = column.rows
    missing_rate = column.missing / rows if rows else 0.0
    base = dict(dtype="numerical", sample_count=column.values.size, missing_count=column.missing,
                missing_rate=missing_rate, non_finite_count=column.non_finite)
    if column.values.size == 0:
        return FeatureDistribution(**base)
    s = np.sort(column.values)
    edges = quantile_bin_edges(s, bins)
    grid = quantile_grid(s, QUANTILE_GRID_SIZE)
    std = float(s.std())
    grid_error = wasserstein_to_grid(grid, s) / std if std > 0 else 0.0
    return FeatureDistribution(
        **base,
        mean=float(s.mean()), std=std, median=float(np.median(s)),
        quantiles=quantiles_of_sorted(s, np.array(SUMMARY_QUANTILES)).tolist(),
        min=float(s[0]), max=float(s[-1]),
        bin_edges=edges.tolist(), bin_proportions=numeric_proportions(edges, s).tolist(),
        quantile_grid=grid.tolist(), wasserstein_grid_error=grid_error,
    )


def categorical_distribution(series: pd.Series, kind: FeatureKind = "categorical") -> FeatureDistribution:
    """Category frequencies of a categorical or boolean column (values as text)."""
    column = categorical_column(series, boolean=kind == "boolean")
    rows = column.rows
    return FeatureDistribution(
        dtype=kind, sample_count=int(column.counts().sum()), missing_count=column.missing,
        missing_rate=column.missing / rows if rows else 0.0, frequencies=category_frequencies(column),
    )


def build_baseline(frame: pd.DataFrame, config: MonitoringConfig, *, model_id: str, model_version: str,
                   source: str = "dataframe", created_by: str | None = None, dataset_version: str | None = None,
                   training_date: datetime | None = None, period_start: datetime | None = None,
                   period_end: datetime | None = None, feature_kinds: Mapping[str, FeatureKind] | None = None,
                   is_active: bool = True, created_at: datetime | None = None) -> DriftSnapshot:
    """Profile ``frame`` into a baseline snapshot (see the module docstring for its columns).

    Fairness baselines use the same small-group rule as the analysis
    (``config.min_group_size``), so a baseline value and a current value are comparable.

    Raises
    ------
    InvalidInput
        when ``frame`` is not a DataFrame or has no ``features.*`` column.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"a baseline is built from a pandas DataFrame, got {type(frame).__name__}")
    features = col.names_with_prefix(frame.columns, col.FEATURE_PREFIX)
    if not features:
        raise InvalidInput("the frame has no 'features.<name>' column to build a baseline from")
    kinds = dict(feature_kinds or {})
    unknown = set(kinds) - set(features)
    if unknown:
        raise InvalidInput(f"feature_kinds names features the frame does not have: {sorted(unknown)}")

    distributions = {}
    for name in features:
        series = frame[col.feature(name)]
        kind = kinds.get(name) or feature_kind(series)
        distributions[name] = (numerical_distribution(series, config.bins) if kind == "numerical"
                               else categorical_distribution(series, kind))

    outputs = read_outputs(frame, config.positive_label)
    problem = positive_class_problem(config.positive_label, outputs, where="the frame's predictions and labels")
    if problem:
        raise InvalidInput(f"cannot build a baseline: {problem.message}")
    accuracy, labelled = outputs.accuracy()

    fields = dict(
        model_id=model_id, model_version=model_version, is_active=is_active, created_by=created_by,
        sample_count=len(frame), dataset_version=dataset_version, training_date=training_date,
        source=source, period_start=period_start, period_end=period_end,
        positive_label=config.positive_label, known_labels=sorted(outputs.seen), bins=config.bins,
        feature_distributions=distributions,
        fairness_metrics=_fairness_baselines(frame, outputs, config),
        prediction_distribution=outputs.class_distribution(), prediction_count=outputs.prediction_count,
        baseline_accuracy=accuracy, labelled_count=labelled,
        output_entropy=OutputEntropy(**{s: output_entropy(frame, s, config.eps).mean for s in entropy_sources(frame)}),
        shap_distributions=_shap_distributions(frame),
        confidence_histogram=_listed(confidence_histogram(frame)),
    )
    if created_at is not None:
        fields["created_at"] = created_at
    return DriftSnapshot(**fields)


def baseline_from_window(window: pd.DataFrame, config: MonitoringConfig, *, model_id: str, model_version: str,
                         **options) -> DriftSnapshot:
    """A baseline from a window of logged predictions; its period is the window's time span
    (first and last ``timestamp``) unless ``period_start``/``period_end`` are given."""
    if col.TIMESTAMP in window.columns and len(window):
        stamps = pd.to_datetime(window[col.TIMESTAMP], utc=True, errors="coerce").dropna()
        if len(stamps):
            options.setdefault("period_start", stamps.min().to_pydatetime())
            options.setdefault("period_end", stamps.max().to_pydatetime())
    return build_baseline(window, config, model_id=model_id, model_version=model_version, source="window",
                          **options)


def _fairness_baselines(frame: pd.DataFrame, outputs, config: MonitoringConfig) -> dict[str, AttributeFairness]:
    result = {}
    for attribute, groups in protected_groups(frame, config.protected_attributes, config.intersections).items():
        if groups.column is None:
            continue
        table = attribute_table(outputs, groups.column)
        gaps = {metric: assess(table, metric, config.min_group_size) for metric in METRICS}
        sr, tpr, fpr = table.selection_rates(), table.true_positive_rates(), table.false_positive_rates()
        rows, positives = table.rows, table.predicted_positive
        actual_pos, actual_neg = table.actual_positive, table.actual_negative
        group_metrics = {
            g: GroupBaseline(selection_rate=_finite(sr[i]), true_positive_rate=_finite(tpr[i]),
                             false_positive_rate=_finite(fpr[i]), sample_count=int(rows[i]),
                             positive_predictions=int(positives[i]), actual_positives=int(actual_pos[i]),
                             actual_negatives=int(actual_neg[i]))
            for i, g in enumerate(table.groups) if rows[i] > 0
        }
        result[attribute] = AttributeFairness(
            **{metric: gap.value for metric, gap in gaps.items()},
            group_metrics=group_metrics,
            insufficient_groups=sorted(set(gaps[DEMOGRAPHIC_PARITY.name].insufficient)),
        )
    return result


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _shap_distributions(frame: pd.DataFrame) -> dict[str, ShapDistribution]:
    result = {}
    for name in col.names_with_prefix(frame.columns, col.EXPLANATION_PREFIX):
        values = numeric_column(frame[col.explanation(name)]).values
        if values.size == 0:
            continue
        result[name] = ShapDistribution(mean=float(values.mean()), std=float(values.std()),
                                        median=float(np.median(values)), mean_abs=float(np.abs(values).mean()),
                                        sample_count=int(values.size))
    return result


def _listed(shares) -> list[float] | None:
    return None if shares is None else shares.tolist()
