"""``drift_snapshots``: a model's baseline, everything drift needs without the raw rows.

Built by :func:`monitoring_core.metrics.build_baseline` from a training/validation frame
or from a window of logged predictions. Per numerical feature it keeps the reference
decile edges and proportions (PSI, KL), a 1001-point quantile grid (Wasserstein) and the
summary statistics of the source schema; per categorical feature the category
frequencies; per protected attribute the per-group selection rate, TPR, FPR and counts;
the prediction distribution, the accuracy when labels exist, the mean output entropy and
the SHAP distributions.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..clock import now
from .common import Document, Part, UtcDatetime, new_id

FeatureKind = Literal["numerical", "categorical", "boolean"]


class FeatureDistribution(Part):
    """Reference distribution of one feature.

    ``bin_edges`` are the *interior* edges of the quantile bins (ascending, duplicates
    collapsed); the outer edges are -inf and +inf, and bin ``i`` holds
    ``edges[i-1] <= x < edges[i]``. ``quantile_grid`` is the reference quantile function at
    the levels :func:`monitoring_core.metrics.binning.quantile_grid_levels` gives for its
    length (Chebyshev-spaced, so the tails are resolved), first value the minimum, last the
    maximum. ``wasserstein_grid_error`` is W1(reference rows, grid) / std: the largest
    amount by which a Wasserstein value computed from this baseline can differ from one
    computed from the raw reference rows (triangle inequality).
    """

    dtype: FeatureKind
    sample_count: int = Field(ge=0, description="non-missing, finite values")
    missing_count: int = Field(ge=0)
    missing_rate: float = Field(ge=0, le=1)
    non_finite_count: int = Field(default=0, ge=0, description="±inf values left out")
    # numerical
    mean: float | None = None
    std: float | None = None
    median: float | None = None
    quantiles: list[float] | None = Field(default=None, description="[p5, p25, p50, p75, p95]")
    min: float | None = None
    max: float | None = None
    bin_edges: list[float] | None = None
    bin_proportions: list[float] | None = None
    quantile_grid: list[float] | None = None
    wasserstein_grid_error: float | None = None
    # categorical and boolean ("True"/"False")
    frequencies: dict[str, float] | None = None

    @model_validator(mode="after")
    def _bins_match_edges(self) -> FeatureDistribution:
        if self.bin_edges is not None and self.bin_proportions is not None:
            if len(self.bin_proportions) != len(self.bin_edges) + 1:
                raise ValueError("bin_proportions needs one more entry than bin_edges")
        return self

    @property
    def is_numerical(self) -> bool:
        return self.dtype == "numerical"


class GroupBaseline(Part):
    """One group of a protected attribute in the reference set."""

    selection_rate: float | None = Field(default=None, ge=0, le=1)
    true_positive_rate: float | None = Field(default=None, ge=0, le=1)
    false_positive_rate: float | None = Field(default=None, ge=0, le=1)
    sample_count: int = Field(ge=0)
    positive_predictions: int = Field(default=0, ge=0)
    actual_positives: int = Field(default=0, ge=0, description="rows with positive ground truth")
    actual_negatives: int = Field(default=0, ge=0, description="rows with other (known) ground truth")


class AttributeFairness(Part):
    """Reference fairness of one protected attribute (same small-group rule as the analysis)."""

    demographic_parity: float | None = None
    equal_opportunity: float | None = None
    disparate_impact: float | None = None
    group_metrics: dict[str, GroupBaseline] = Field(default_factory=dict)
    insufficient_groups: list[str] = Field(default_factory=list)


class ShapDistribution(Part):
    """SHAP values of one feature; importance is ``mean_abs``."""

    mean: float
    std: float
    median: float
    mean_abs: float = Field(ge=0)
    sample_count: int = Field(ge=0)


class OutputEntropy(Part):
    """Mean Shannon entropy (nats) of the model's outputs, per source available."""

    probabilities: float | None = Field(default=None, description="from prediction.probabilities.*")
    confidence: float | None = Field(default=None, description="confidence read as a Bernoulli")


class DriftSnapshot(Document):
    snapshot_id: str = Field(default_factory=lambda: new_id("SNAP"), min_length=1)
    model_id: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    is_active: bool = True
    created_at: UtcDatetime = Field(default_factory=now)
    created_by: str | None = None
    archived_at: UtcDatetime | None = None
    sample_count: int = Field(ge=0)
    dataset_version: str | None = None
    training_date: UtcDatetime | None = None

    source: Literal["dataframe", "window"] = "dataframe"
    period_start: UtcDatetime | None = None
    period_end: UtcDatetime | None = None

    positive_label: str | None = None
    known_labels: list[str] = Field(default_factory=list, description="classes seen as predictions or labels")
    bins: int = Field(default=10, ge=2)
    feature_distributions: dict[str, FeatureDistribution] = Field(default_factory=dict)
    fairness_metrics: dict[str, AttributeFairness] = Field(default_factory=dict)
    prediction_distribution: dict[str, float] = Field(default_factory=dict)
    prediction_count: int = Field(default=0, ge=0)
    baseline_accuracy: float | None = Field(default=None, ge=0, le=1)
    labelled_count: int = Field(default=0, ge=0)
    output_entropy: OutputEntropy = Field(default_factory=OutputEntropy)
    confidence_histogram: list[float] | None = Field(
        default=None, description="share of confidences in ten equal bins over [0, 1]")
    shap_distributions: dict[str, ShapDistribution] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _period_for_windows(self) -> DriftSnapshot:
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise ValueError("period_start is after period_end")
        return self
