"""``monitoring_audit_logs``: the hash-chained record of every state change."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..clock import now
from .common import Document, UtcDatetime


class AuditEvent(enum.StrEnum):
    # The source schema's events...
    BASELINE_CREATED = "baseline_created"
    BASELINE_UPDATED = "baseline_updated"
    BASELINE_ARCHIVED = "baseline_archived"
    ANALYSIS_RUN = "analysis_run"
    INCIDENT_CREATED = "incident_created"
    INCIDENT_ACKNOWLEDGED = "incident_acknowledged"
    INCIDENT_RESOLVED = "incident_resolved"
    ALERT_SENT = "alert_sent"
    ALERT_SUPPRESSED = "alert_suppressed"
    MANUAL_ANALYSIS_TRIGGERED = "manual_analysis_triggered"
    # ...and the state changes the product adds.
    BASELINE_ACTIVATED = "baseline_activated"
    INCIDENT_UPDATED = "incident_updated"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    ALERT_RESOLVED = "alert_resolved"
    SUPPRESSION_CREATED = "suppression_created"
    SUPPRESSION_ENDED = "suppression_ended"
    SUPPRESSION_APPROVED = "suppression_approved"
    PREDICTIONS_INGESTED = "predictions_ingested"
    GROUND_TRUTH_RECORDED = "ground_truth_recorded"
    MODEL_REGISTERED = "model_registered"
    MODEL_UPDATED = "model_updated"
    RETENTION_PURGE = "retention_purge"
    DEMO_SEEDED = "demo_seeded"
    AUDIT_EXPORTED = "audit_exported"
    ANALYSIS_FAILED = "analysis_failed"  # MongoDB: a failed run's writes were taken back
    INCIDENT_ASSIGNED = "incident_assigned"
    INCIDENT_ACTION_ADDED = "incident_action_added"
    INCIDENT_RISK_ACCEPTANCE_REQUESTED = "incident_risk_acceptance_requested"
    INCIDENT_RISK_ACCEPTED = "incident_risk_accepted"
    MODEL_FROZEN = "model_frozen"
    MODEL_UNFROZEN = "model_unfrozen"
    USER_ADDED = "user_added"
    USER_CHANGED = "user_changed"
    USER_SIGNED_IN = "user_signed_in"
    USER_SIGN_IN_FAILED = "user_sign_in_failed"
    USER_LOCKED = "user_locked"
    USER_SIGNED_OUT = "user_signed_out"
    PAGE_VIEWED = "page_viewed"  # policy 6: who viewed what, when
    TABLE_EXPORTED = "table_exported"


class AuditActor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    user_email: str | None = None
    system: bool = False
    role: str | None = None


class AuditTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str | None = None
    incident_id: str | None = None
    alert_id: str | None = None
    snapshot_id: str | None = None
    record_id: str | None = None
    suppression_id: str | None = None


class AuditEntry(Document):
    """An entry as stored. ``seq``, ``prev_hash``, ``hash`` and ``signature`` are set by the
    audit log on append: ``hash`` is SHA-256 over every other field but ``signature``
    (``prev_hash`` and ``seq`` included), so editing, removing, inserting or moving an entry
    breaks the chain; ``signature`` is HMAC-SHA256 of ``hash`` with the audit key, so an
    entry written without the key (with a correct hash) is told apart too."""

    event_type: AuditEvent
    actor: AuditActor
    target: AuditTarget = Field(default_factory=AuditTarget)
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: UtcDatetime = Field(default_factory=now)
    ip_address: str | None = None
    user_agent: str | None = None
    seq: int | None = Field(default=None, ge=1)
    prev_hash: str | None = None
    hash: str | None = None
    signature: str | None = None


CheckpointName = Literal["tip", "anchor"]


class AuditCheckpoint(Document):
    """``audit_checkpoints``: a signed link of the chain kept outside the log itself.

    ``tip`` is the last appended entry (refreshed with every append): a log whose stored
    entries stop before it was truncated. ``anchor`` is the last entry retention purged:
    verification starts after it. ``signature`` is HMAC-SHA256 over ``name``, ``seq`` and
    ``hash`` with the audit key.
    """

    name: CheckpointName
    seq: int = Field(ge=0)
    hash: str
    signed_at: UtcDatetime = Field(default_factory=now)
    signature: str
