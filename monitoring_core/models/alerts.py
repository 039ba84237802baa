"""``alerts`` and ``alert_suppressions``: notifications sent for incidents, and the rules
that silence them."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..clock import now
from .common import Document, Severity, UtcDatetime, new_id
from .incidents import is_fairness_metric
from .metric_registry import spec_of

# Policy section 12: an accepted-risk exception silences alerts for 30 days at most.
MAX_ACCEPTED_RISK = timedelta(days=30)


class AlertStatus(enum.StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    # Recorded and visible, never delivered: a suppression rule covered it (``suppressed_by``).
    SUPPRESSED = "suppressed"


class Channel(enum.StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    SMS = "sms"
    PAGERDUTY = "pagerduty"
    DASHBOARD = "dashboard"


class DeliveryAttempt(BaseModel):
    """One try at sending a notification (:mod:`monitoring_core.alerts.outbox`); errors are
    stored redacted, never with a webhook URL or password."""

    model_config = ConfigDict(extra="forbid")

    delivery_id: str
    channel: Channel
    at: UtcDatetime
    outcome: Literal["sent", "retry", "failed"]
    error: str | None = None


class Alert(Document):
    alert_id: str = Field(default_factory=lambda: new_id("ALR"))
    incident_id: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    metric_value: float = Field(allow_inf_nan=False)
    threshold: float = Field(allow_inf_nan=False)
    severity: Severity
    status: AlertStatus = AlertStatus.PENDING
    channels_notified: list[Channel] = Field(default_factory=list)
    slack_message_ts: str | None = None
    email_message_id: str | None = None
    delivery_attempts: list[DeliveryAttempt] = Field(default_factory=list)
    acknowledged_by: str | None = None
    acknowledged_at: UtcDatetime | None = None
    acknowledgment_notes: str | None = None
    resolved_by: str | None = None
    resolved_at: UtcDatetime | None = None
    resolution_notes: str | None = None
    deduplicated_from: str | None = None
    deduplicated_count: int = Field(default=0, ge=0)
    created_at: UtcDatetime = Field(default_factory=now)
    updated_at: UtcDatetime | None = None
    # Beyond the source schema: what the alert manager needs (monitoring_core.alerts.manager).
    affected_groups: list[str] = Field(default_factory=list)
    last_seen_at: UtcDatetime | None = None  # the latest repeat folded into this alert
    suppressed_by: str | None = None  # the suppression_id of the rule that silenced it
    # Set while this alert absorbs repeats of its model, metric and severity; a unique
    # index lets only one alert hold a key, so two concurrent raisers cannot both create.
    dedup_key: str | None = None


class SuppressionType(enum.StrEnum):
    MAINTENANCE = "maintenance"
    ACCEPTED_RISK = "accepted_risk"
    FALSE_POSITIVE = "false_positive"
    OTHER = "other"


class SuppressionStatus(enum.StrEnum):
    PENDING = "pending"  # covers fairness metrics and waits for an approver: no effect yet
    ACTIVE = "active"  # in force during its window
    EXPIRED = "expired"  # ended early by someone (``ended_by``); no effect any more


class MetricCategory(enum.StrEnum):
    """The metric families a suppression can cover (the record's ``*_drift`` blocks)."""

    DATA = "data"
    FAIRNESS = "fairness"
    MODEL = "model"
    EXPLANATION = "explanation"


def metric_category(metric_name: str) -> MetricCategory | None:
    """The category of an alert metric name (``psi:income`` -> data); None for names
    outside the four families (the aggregated score, ``meta:analysis_silence``)."""
    spec = spec_of(metric_name)  # aliases included, such as the source schema's *_drift spellings
    return None if spec is None else MetricCategory(spec.category.name)


class AlertSuppression(Document):
    suppression_id: str = Field(default_factory=lambda: new_id("SUP"))
    model_id: str = Field(min_length=1)
    # The scope: one metric (``psi`` covers every ``psi:<feature>``), one category, or
    # neither for every metric of the model.
    metric_name: str | None = None
    metric_category: MetricCategory | None = None
    suppress_severities: list[Severity] = Field(default_factory=lambda: list(Severity), min_length=1)
    start_time: UtcDatetime
    end_time: UtcDatetime
    reason: str = Field(min_length=1)
    suppression_type: SuppressionType
    created_by: str = Field(min_length=1)
    approved_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=now)
    status: SuppressionStatus = SuppressionStatus.ACTIVE
    approved_at: UtcDatetime | None = None
    ended_by: str | None = None
    ended_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _rules(self) -> AlertSuppression:
        if self.end_time <= self.start_time:
            raise ValueError(f"end_time must be after start_time (got {self.start_time:%Y-%m-%d %H:%M} .. "
                             f"{self.end_time:%Y-%m-%d %H:%M} UTC)")
        if self.metric_name is not None and self.metric_category is not None:
            raise ValueError("give metric_name or metric_category, not both")
        if self.covers_fairness and self.status == SuppressionStatus.ACTIVE and not self.approved_by:
            raise ValueError("approved_by: a suppression that covers fairness metrics needs an approver before it "
                             "takes effect (create it pending)")
        if self.approved_by is not None and self.approved_by == self.created_by:
            raise ValueError("approved_by: the approver must be someone other than created_by")
        if self.suppression_type == SuppressionType.ACCEPTED_RISK and self.end_time - self.start_time > MAX_ACCEPTED_RISK:
            raise ValueError("end_time: an accepted-risk suppression lasts 30 days at most (policy section 12)")
        return self

    @property
    def covers_fairness(self) -> bool:
        """Whether the rule can silence a fairness metric (policy 12: then it needs approval)."""
        if self.metric_name is not None:
            return is_fairness_metric(self.metric_name)
        return self.metric_category in (None, MetricCategory.FAIRNESS)

    @property
    def scope(self) -> str:
        """The rule's scope in words: ``metric psi``, ``category fairness`` or ``all metrics``."""
        if self.metric_name is not None:
            return f"metric {self.metric_name}"
        return f"category {self.metric_category}" if self.metric_category is not None else "all metrics"

    def covers(self, metric_name: str, severity: Severity, at) -> bool:
        """Whether this rule silences an alert for ``metric_name`` at ``severity`` at time ``at``
        (only an active rule does, inside ``[start_time, end_time)``)."""
        if self.metric_name is not None:
            metric_matches = self.metric_name in (metric_name, metric_name.split(":", 1)[0])
        else:
            metric_matches = self.metric_category in (None, metric_category(metric_name))
        return (self.status == SuppressionStatus.ACTIVE and metric_matches and severity in self.suppress_severities
                and self.start_time <= at < self.end_time)
