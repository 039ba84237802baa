"""From values to severities, metric scores and the aggregated score (spec section 6, revised 2026-11-23).

* A metric's severity comes from its :class:`~monitoring_core.models.thresholds.Threshold`;
  a fairness value beyond a threshold keeps it only when its test is significant
  (:func:`significant_severity`).
* A metric's score (:func:`metric_score`, bands from the metric registry): 0 at INFO, when
  unavailable or inconclusive; ``0.5 * position`` at WARNING, ``position`` in ``[0, 1]``
  being how far the value has gone from the WARNING towards the CRITICAL threshold; 1 at
  CRITICAL.
* A category's score is the maximum of its metrics' scores (None when none is available).
* ``aggregated_score = 0.40 fairness + 0.30 data + 0.20 model + 0.10 explanation`` with
  fixed weights: an unavailable category contributes 0, nothing is renormalised, so a score
  means the same for every model. One WARNING scores at most 0.40 x 0.5 = 0.20.
* ``max_severity`` is the worst metric severity, and CRITICAL when the aggregated score
  alone exceeds its threshold (0.30, policy 2.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from ..models.common import Severity
from ..models.metric_registry import MetricSpec, category_weights
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


def significant_severity(point: Severity, p_adjusted: float, alpha: float) -> Severity:
    """The severity of a fairness value: its point severity when the adjusted p-value is
    below ``alpha``, INFO otherwise (the breach is then inconclusive)."""
    return point if p_adjusted < alpha else Severity.INFO


def metric_score(metric: MetricValue, spec: MetricSpec) -> float:
    """The metric's score towards the aggregate, in ``[0, 1]`` (see the module docstring)."""
    if not metric.available or metric.value is None or metric.threshold is None:
        return 0.0
    if metric.severity is Severity.CRITICAL:
        return spec.score_bands.critical
    if metric.severity is Severity.WARNING:
        return spec.score_bands.warning_ceiling * metric.threshold.position(metric.value)
    return 0.0


def category_score(scores: Iterable[float | None]) -> float | None:
    """Maximum score over the category's available metrics (None when none is available)."""
    available = [s for s in scores if s is not None]
    return max(available) if available else None


def aggregated_score(category_scores: Mapping[str, float | None],
                     weights: Mapping[str, float] = CATEGORY_WEIGHTS) -> float:
    """``sum_c weight_c * score_c`` with fixed weights; an unavailable category (None) adds 0."""
    score = sum(weights[c] * s for c, s in category_scores.items() if s is not None)
    return float(min(1.0, max(0.0, score)))


def overall_severity(metrics: Iterable[MetricValue], score: float, score_threshold: Threshold) -> Severity:
    """Worst metric severity; CRITICAL also when the aggregated score breaches its threshold."""
    return Severity.worst([*(m.severity for m in metrics), score_threshold.severity(score)])
