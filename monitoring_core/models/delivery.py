"""``alert_deliveries``: the outbox of notifications still to send, and what became of each.

A delivery is one message to one destination (the Slack webhook of a model, or one email
address). It is written in the same unit of work as its alert, so a notification is never
lost between deciding to send it and sending it; a sender *claims* it before sending
(:mod:`monitoring_core.alerts.outbox`), so two processes never send the same one.
"""

from __future__ import annotations

import enum

from pydantic import Field

from ..clock import now
from .alerts import AlertStatus, Channel, DeliveryAttempt
from .common import Document, UtcDatetime, new_id


class DeliveryKind(enum.StrEnum):
    NOTIFY = "notify"  # the alert itself, sent at once
    ESCALATION = "escalation"  # sent at not_before unless the alert was handled by then
    DIGEST_ITEM = "digest_item"  # a WARNING held for the daily digest of its recipient
    DIGEST = "digest"  # one recipient's digest of a day


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # due at not_before
    HELD = "held"  # a digest item waiting for its day's digest
    SENT = "sent"
    FAILED = "failed"  # final: refused by the receiver, or retried for too long
    CANCELLED = "cancelled"  # an escalation made unnecessary by an acknowledgement
    DIGESTED = "digested"  # a digest item included in a digest delivery


class AlertDelivery(Document):
    delivery_id: str = Field(default_factory=lambda: new_id("DLV"))
    kind: DeliveryKind
    channel: Channel
    alert_ids: list[str] = Field(min_length=1)
    model_id: str | None = None  # None for a digest, which spans models
    role: str | None = None  # the recipient's role (compliance_officer, ml_lead, cto, executive)
    recipient: str | None = None  # email address; Slack goes to the model's configured webhook
    mention_channel: bool = False  # Slack <!channel>
    reason: str | None = None  # why this delivery exists, shown in the message ("escalation: ...")
    #: An escalation is cancelled once its alert reached this status (or a later one).
    cancel_when: AlertStatus | None = None
    digest_day: str | None = None  # YYYY-MM-DD: the day of a digest item's alert, or of a digest
    digest_of: str | None = None  # for a digested item: the digest delivery that carried it
    status: DeliveryStatus = DeliveryStatus.PENDING
    not_before: UtcDatetime = Field(default_factory=now)
    claimed_by: str | None = None
    claim_expires_at: UtcDatetime | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    message_ref: str | None = None  # Slack ts or email Message-ID of the sent message
    final_error: str | None = None
    created_at: UtcDatetime = Field(default_factory=now)
    sent_at: UtcDatetime | None = None
