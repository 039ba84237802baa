"""From values to severities, normalised scores and the aggregated score (spec section 6).

* A metric's severity comes from its :class:`~monitoring_core.models.thresholds.Threshold`.
* Its normalised score is ``min(1, v / critical)`` (higher is worse) or
  ``min(1, (1 - v) / (1 - critical))`` (lower is worse: disparate impact, rank correlation).
* A category's score is the maximum of its available metrics' scores.
* ``aggregated_score`` is the weighted mean of the available categories' scores with weights
  fairness 0.40, data 0.30, model 0.20, explanation 0.10, renormalised over the categories
  available in the run (0 when none is).
* ``max_severity`` is the worst metric severity, and CRITICAL when the aggregated score
  alone exceeds its threshold (0.30, policy 2.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from ..models.common import Severity
from ..models.metric_registry import category_weights
from ..models.record import MetricValue, Reason
from ..models.thresholds import Threshold

CATEGORY_WEIGHTS: dict[str, float] = category_weights()
"""Weight of each category in the aggregated score, from the metric registry."""

M = TypeVar("M", bound=MetricValue)


def judged(kind: type[M], value: float, threshold: Threshold, **fields) -> M:
    """An available metric value with its severity under ``threshold``."""
    return kind(value=float(value), severity=threshold.severity(value), available=True, threshold=threshold,
                **fields)


def unavailable(kind: type[M], reason: Reason, threshold: Threshold | None, detail: str | None = None,
                **fields) -> M:
    """A metric that could not be computed in this run: no value, no severity, a reason."""
    return kind(value=None, severity=Severity.INFO, available=False, reason=reason, detail=detail,
                threshold=threshold, **fields)


def normalised_score(metric: MetricValue) -> float | None:
    """The metric's badness in ``[0, 1]``; None when it is unavailable."""
    if not metric.available or metric.value is None or metric.threshold is None:
        return None
    return metric.threshold.normalised(metric.value)


def category_score(metrics: Iterable[MetricValue]) -> float | None:
    """Maximum normalised score over the category's available metrics (None if none is)."""
    scores = [s for s in (normalised_score(m) for m in metrics) if s is not None]
    return max(scores) if scores else None


def aggregated_score(category_scores: Mapping[str, float | None],
                     weights: Mapping[str, float] = CATEGORY_WEIGHTS) -> float:
    """Weighted mean of the available category scores, weights renormalised over them."""
    available = {c: s for c, s in category_scores.items() if s is not None}
    total_weight = sum(weights[c] for c in available)
    if total_weight == 0:
        return 0.0
    score = sum(weights[c] * s for c, s in available.items()) / total_weight
    return float(min(1.0, max(0.0, score)))


def overall_severity(metrics: Iterable[MetricValue], score: float, score_threshold: Threshold) -> Severity:
    """Worst metric severity; CRITICAL also when the aggregated score breaches its threshold."""
    return Severity.worst([*(m.severity for m in metrics), score_threshold.severity(score)])
