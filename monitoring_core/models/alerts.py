"""``alerts`` and ``alert_suppressions``: notifications sent for incidents, and the rules
that silence them."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import Document, Severity, UtcDatetime, new_id
from .incidents import is_fairness_metric
from ..clock import now

# Policy section 12: an accepted-risk exception silences alerts for 30 days at most.
MAX_ACCEPTED_RISK = timedelta(days=30)


class AlertStatus(enum.StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


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


class SuppressionType(enum.StrEnum):
    MAINTENANCE = "maintenance"
    ACCEPTED_RISK = "accepted_risk"
    FALSE_POSITIVE = "false_positive"
    OTHER = "other"


class AlertSuppression(Document):
    suppression_id: str = Field(default_factory=lambda: new_id("SUP"))
    model_id: str = Field(min_length=1)
    metric_name: str | None = None  # None silences every metric of the model
    suppress_severities: list[Severity] = Field(default_factory=lambda: list(Severity))
    start_time: UtcDatetime
    end_time: UtcDatetime
    reason: str = Field(min_length=1)
    suppression_type: SuppressionType
    created_by: str = Field(min_length=1)
    approved_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=now)

    @model_validator(mode="after")
    def _rules(self) -> AlertSuppression:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        covers_fairness = self.metric_name is None or is_fairness_metric(self.metric_name)
        if covers_fairness and not self.approved_by:
            raise ValueError("approved_by: a suppression that covers fairness metrics needs an approver")
        if self.suppression_type == SuppressionType.ACCEPTED_RISK and self.end_time - self.start_time > MAX_ACCEPTED_RISK:
            raise ValueError("end_time: an accepted-risk suppression lasts 30 days at most (policy section 12)")
        return self

    def covers(self, metric_name: str, severity: Severity, at) -> bool:
        """Whether this rule silences an alert for ``metric_name`` at ``severity`` at time ``at``."""
        metric_matches = self.metric_name is None or self.metric_name in (metric_name, metric_name.split(":", 1)[0])
        return metric_matches and severity in self.suppress_severities and self.start_time <= at < self.end_time
