"""Fairwatch's metrics: pure, vectorised functions from arrays and DataFrames to typed results.

Low-level metrics take plain arrays (``psi(reference, current)``,
``demographic_parity_difference(y_true, y_pred, sensitive_features=groups, pos_label="approve")``...)
and share their kernels with the engine.
:func:`compute_metrics` computes the whole set for a window against a baseline and returns
a :class:`~monitoring_core.models.record.MonitoringRecord`; :func:`build_baseline` builds
the :class:`~monitoring_core.models.baseline.DriftSnapshot` it compares with.
Definitions: ``docs/metrics.md`` and the project's metric spec.
"""

from .drift import (
    category_frequency_shift,
    kl_divergence,
    missing_rate,
    missing_value_density_change,
    psi,
    wasserstein,
    wasserstein_from_grid,
)
from .engine import ANALYZER_VERSION, compute_metrics, required_columns
from .explanation import feature_importance, rank_correlation, shap_kl_divergence, top_features_change
from .fairness import (
    demographic_parity_difference,
    disparate_impact_ratio,
    equal_opportunity_difference,
    holm,
    homogeneity_test,
    selection_rates,
)
from .model import (
    accuracy_drop,
    output_entropy_change,
    prediction_distribution_shift,
    prediction_volatility,
    row_entropy,
)
from .profile import baseline_from_window, build_baseline
from .severity import CATEGORY_WEIGHTS, aggregated_score, metric_score

__all__ = [
    "ANALYZER_VERSION", "CATEGORY_WEIGHTS", "accuracy_drop", "aggregated_score", "baseline_from_window",
    "build_baseline", "category_frequency_shift", "compute_metrics", "demographic_parity_difference",
    "disparate_impact_ratio", "equal_opportunity_difference", "feature_importance", "holm", "homogeneity_test",
    "kl_divergence",
    "metric_score", "missing_rate", "missing_value_density_change", "output_entropy_change",
    "prediction_distribution_shift", "prediction_volatility", "psi", "rank_correlation", "required_columns",
    "row_entropy", "selection_rates", "shap_kl_divergence", "top_features_change", "wasserstein",
    "wasserstein_from_grid",
]
