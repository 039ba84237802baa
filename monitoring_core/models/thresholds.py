"""Per-model monitoring settings: risk level, thresholds per metric, sample-size guards.

The policy (section 2) gives one threshold table; it is the default for every risk level,
and a model may override any metric for any level. A threshold whose WARNING bound lies on
the wrong side of its CRITICAL bound is refused, naming the metric.

The risk level also sets how often each family of metrics is analysed (policy section 1.1);
:data:`CADENCE_BY_RISK_LEVEL` holds that table for the scheduler.
"""

from __future__ import annotations

import enum
import math
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from .common import Severity
from .metric_registry import METRICS, Direction, MetricSpec, RiskLevel


def unknown_label_message(label: str, classes, where: str) -> str:
    """"positive class 'Approve' not among <where> ['approve', 'reject']; did you mean 'approve'?"

    Labels match exactly; a label equal but for case or surrounding spaces is suggested.
    """
    seen = sorted(str(c) for c in classes)
    message = f"positive class {label!r} not among {where} {seen}"
    close = [c for c in seen if c.strip().casefold() == label.strip().casefold()]
    return message + (f"; did you mean {close[0]!r}?" if close else "")


class Threshold(BaseModel):
    """WARNING and CRITICAL bounds of one metric.

    For ``higher_is_worse`` a value is CRITICAL when ``v > critical`` (``v >= critical``
    if ``critical_inclusive``), else WARNING when ``v > warning`` (``>=`` if
    ``warning_inclusive``), else INFO. ``lower_is_worse`` mirrors this with ``<``.
    The inclusivity flags reproduce the spec's table (PSI ``v >= 0.25``, Wasserstein
    ``v > 0.30``, disparate impact ``v < 0.80``...).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = Field(default=None, description="name used in error messages")
    warning: float = Field(allow_inf_nan=False)
    critical: float = Field(allow_inf_nan=False)
    direction: Direction = Direction.HIGHER_IS_WORSE
    warning_inclusive: bool = False
    critical_inclusive: bool = False

    @model_validator(mode="after")
    def _warning_before_critical(self) -> Threshold:
        name = self.metric or "threshold"
        if self.direction is Direction.HIGHER_IS_WORSE and self.warning > self.critical:
            raise ValueError(f"{name}: WARNING threshold {self.warning} is above CRITICAL {self.critical}; "
                             "for a metric where higher is worse WARNING must not exceed CRITICAL")
        if self.direction is Direction.LOWER_IS_WORSE and self.warning < self.critical:
            raise ValueError(f"{name}: WARNING threshold {self.warning} is below CRITICAL {self.critical}; "
                             "for a metric where lower is worse WARNING must not be below CRITICAL")
        return self

    @property
    def higher_is_worse(self) -> bool:
        return self.direction is Direction.HIGHER_IS_WORSE

    def _beyond(self, value: float, bound: float, inclusive: bool) -> bool:
        if self.higher_is_worse:
            return value >= bound if inclusive else value > bound
        return value <= bound if inclusive else value < bound

    def severity(self, value: float | None) -> Severity:
        """Severity of ``value``; INFO for a missing or NaN value (it judges nothing)."""
        if value is None or math.isnan(value):
            return Severity.INFO
        if self._beyond(value, self.critical, self.critical_inclusive):
            return Severity.CRITICAL
        if self._beyond(value, self.warning, self.warning_inclusive):
            return Severity.WARNING
        return Severity.INFO

    def bound_for(self, severity: Severity) -> float | None:
        """The threshold a value of ``severity`` crossed (None for INFO)."""
        return {Severity.CRITICAL: self.critical, Severity.WARNING: self.warning}.get(Severity(severity))

    def normalised(self, value: float) -> float:
        """Badness in ``[0, 1]`` (spec section 6).

        ``min(1, v / critical)`` when higher is worse, ``min(1, (1 - v) / (1 - critical))``
        when lower is worse; values on the good side of zero clip to 0.
        """
        if self.higher_is_worse:
            score = value / self.critical if self.critical > 0 else (1.0 if value > 0 else 0.0)
        else:
            score = (1.0 - value) / (1.0 - self.critical) if self.critical < 1 else (1.0 if value < 1 else 0.0)
        return float(min(1.0, max(0.0, score)))


POLICY_THRESHOLDS: dict[str, dict[str, Any]] = {
    name: spec.threshold_fields(RiskLevel.HIGH) for name, spec in METRICS.items()}
"""Default threshold of every metric (derived from the metric registry)."""


def _default(spec: MetricSpec) -> Any:
    return Field(default_factory=lambda: Threshold(**spec.threshold_fields(RiskLevel.HIGH)))


class _ThresholdSetBase(BaseModel):
    """One threshold per metric of :mod:`~monitoring_core.models.metric_registry`. Overrides may
    give only the bounds they change::

        ThresholdSet(demographic_parity={"warning": 0.03, "critical": 0.06})
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _merge_partial_overrides(cls, data: Any) -> Any:
        """A partial override keeps the policy's other bounds and is named after its field."""
        if not isinstance(data, dict):
            return data
        return {metric: _merged(metric, value) for metric, value in data.items()}

    def __getitem__(self, metric: str) -> Threshold:
        return getattr(self, metric)


def _merged(metric: str, value: Any, level: RiskLevel = RiskLevel.HIGH) -> Any:
    if metric in METRICS and isinstance(value, dict):
        return {**METRICS[metric].threshold_fields(level), **value}
    return value


ThresholdSet = create_model("ThresholdSet", __base__=_ThresholdSetBase, __module__=__name__,
                            **{name: (Threshold, _default(spec)) for name, spec in METRICS.items()})


def default_thresholds(level: RiskLevel) -> ThresholdSet:
    """The policy's threshold set for a risk level."""
    return ThresholdSet(**{name: spec.threshold_fields(level) for name, spec in METRICS.items()})


class Cadence(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"

    @property
    def interval(self) -> timedelta:
        """Nominal interval; ``monthly`` is 30 days (a scheduler may use calendar months)."""
        return timedelta(days={"daily": 1, "weekly": 7, "biweekly": 14, "monthly": 30}[self.value])


class AnalysisCadence(BaseModel):
    """How often each metric family is analysed for a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Cadence
    fairness: Cadence
    model: Cadence
    explanation: Cadence


# Policy section 1.1. The table gives "Weekly" fairness for low-risk models, but its note says
# fairness drift is ALWAYS checked at least daily regardless of risk level; the note wins.
CADENCE_BY_RISK_LEVEL: dict[RiskLevel, AnalysisCadence] = {
    RiskLevel.HIGH: AnalysisCadence(data=Cadence.DAILY, fairness=Cadence.DAILY, model=Cadence.DAILY,
                                    explanation=Cadence.WEEKLY),
    RiskLevel.MEDIUM: AnalysisCadence(data=Cadence.WEEKLY, fairness=Cadence.DAILY, model=Cadence.WEEKLY,
                                      explanation=Cadence.BIWEEKLY),
    RiskLevel.LOW: AnalysisCadence(data=Cadence.BIWEEKLY, fairness=Cadence.DAILY, model=Cadence.BIWEEKLY,
                                   explanation=Cadence.MONTHLY),
}


class MonitoringConfig(BaseModel):
    """How one model is monitored. Every field but ``positive_label`` has the spec's default.

    ``thresholds`` maps a risk level to its threshold set; levels not given use the policy
    defaults, and a level given partially keeps the defaults for the metrics it omits.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk_level: RiskLevel = RiskLevel.HIGH
    positive_label: str = Field(min_length=1, description="the favourable class, e.g. 'approve'")
    class_labels: list[str] | None = Field(
        default=None, description="every class the model may output; labels outside it are counted as "
                                  "data-quality violations. None: the baseline's classes plus positive_label")
    protected_attributes: list[str] = Field(default_factory=lambda: ["gender", "age_group", "race"])
    min_window_size: int = Field(default=100, ge=1)
    min_group_size: int = Field(default=30, ge=1)
    bins: int = Field(default=10, ge=2, le=1000)
    eps: float = Field(default=1e-4, gt=0, lt=0.01)
    bootstrap_resamples: int = Field(default=200, ge=0, le=100_000)
    bootstrap_seed: int = Field(default=0, ge=0)
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    min_hourly_chunk: int = Field(default=30, ge=1)
    thresholds: dict[RiskLevel, ThresholdSet] = Field(default_factory=dict, validate_default=True)
    # Policy 2.2 (optional per model): a CRITICAL fairness incident freezes the model.
    freeze_on_critical_fairness: bool = False

    @field_validator("thresholds", mode="before")
    @classmethod
    def _level_defaults(cls, given: Any) -> Any:
        """A level's partial overrides keep that level's default bounds for everything else."""
        if not isinstance(given, dict):
            return given
        return {level: {m: _merged(m, v, RiskLevel(level)) for m, v in value.items()}
                if isinstance(value, dict) and level in set(RiskLevel) else value
                for level, value in given.items()}

    @field_validator("thresholds", mode="after")
    @classmethod
    def _every_level(cls, given: dict[RiskLevel, ThresholdSet]) -> dict[RiskLevel, ThresholdSet]:
        return {level: given[level] if level in given else default_thresholds(level) for level in RiskLevel}

    @field_validator("protected_attributes", "class_labels")
    @classmethod
    def _distinct(cls, names: list[str] | None) -> list[str] | None:
        if names is not None and len(set(names)) != len(names):
            raise ValueError(f"names must be distinct, got {names}")
        return names

    @model_validator(mode="after")
    def _positive_is_a_class(self) -> MonitoringConfig:
        if self.class_labels is not None and self.positive_label not in self.class_labels:
            raise ValueError(unknown_label_message(self.positive_label, self.class_labels, "class_labels"))
        return self

    @property
    def active_thresholds(self) -> ThresholdSet:
        """The threshold set of this model's risk level."""
        return self.thresholds[self.risk_level]

    @property
    def cadence(self) -> AnalysisCadence:
        return CADENCE_BY_RISK_LEVEL[self.risk_level]

