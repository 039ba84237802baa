"""``incidents``: a breach being investigated, with its lifecycle and SLA timestamps."""

from __future__ import annotations

import enum

from pydantic import Field, model_validator

from ..clock import now
from .common import Document, Part, Severity, UtcDatetime, new_id
from .metric_registry import FAIRNESS, spec_of


def is_fairness_metric(metric_name: str) -> bool:
    """Whether an incident/alert metric name (``demographic_parity:gender``, or the source
    schema's ``demographic_parity_drift``) is a fairness metric; such an incident must name
    the groups it affects."""
    spec = spec_of(metric_name)
    return spec is not None and spec.category == FAIRNESS


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    ACCEPTED_RISK = "accepted_risk"


class RootCauseCategory(enum.StrEnum):
    DATA_QUALITY = "data_quality"
    CONCEPT_DRIFT = "concept_drift"
    MODEL_ISSUE = "model_issue"
    PIPELINE_ERROR = "pipeline_error"
    OTHER = "other"


class ResolutionCategory(enum.StrEnum):
    RETRAINED = "retrained"
    DATA_FIXED = "data_fixed"
    BASELINE_UPDATED = "baseline_updated"
    ACCEPTED_RISK = "accepted_risk"
    FALSE_POSITIVE = "false_positive"


class TriggeredMetric(Part):
    """One metric item at WARNING or CRITICAL: what a record's
    :meth:`~monitoring_core.models.record.MonitoringRecord.breaches` lists and an incident's
    ``metrics_triggered`` stores. ``metric_name`` is ``<metric>`` or ``<metric>:<feature or
    attribute>`` (:func:`~monitoring_core.models.metric_registry.item_name`)."""

    metric_name: str = Field(min_length=1)
    value: float = Field(allow_inf_nan=False)
    threshold: float = Field(allow_inf_nan=False)
    severity: Severity | None = None
    affected_groups: list[str] = Field(default_factory=list)
    feature: str | None = None
    attribute: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    last_seen_at: UtcDatetime | None = Field(default=None, description="run time of the latest record at this level")


class ResponseAction(Part):
    action: str = Field(min_length=1)
    taken_by: str = Field(min_length=1)
    taken_at: UtcDatetime = Field(default_factory=now)
    notes: str | None = None


class RiskAcceptance(Part):
    """Policy section 12: a documented exception. ``approved_by`` is empty while a request
    for a fairness incident waits for a compliance officer."""

    rationale: str = Field(min_length=1)
    days: int = Field(gt=0)
    requested_by: str = Field(min_length=1)
    requested_at: UtcDatetime
    approved_by: str | None = None
    approved_at: UtcDatetime | None = None
    until: UtcDatetime | None = Field(default=None, description="end of the alert suppression, once approved")
    suppression_ids: list[str] = Field(default_factory=list)


class Incident(Document):
    incident_id: str = Field(default_factory=lambda: new_id("INC"))
    model_id: str = Field(min_length=1)
    severity: Severity
    status: IncidentStatus = IncidentStatus.OPEN
    metrics_triggered: list[TriggeredMetric] = Field(default_factory=list)
    affected_groups: list[str] = Field(default_factory=list)
    root_cause: str | None = None
    root_cause_category: RootCauseCategory | None = None
    response_actions: list[ResponseAction] = Field(default_factory=list)
    assigned_to: str | None = None
    assigned_at: UtcDatetime | None = None
    resolved_by: str | None = None
    resolved_at: UtcDatetime | None = None
    resolution_notes: str | None = None
    resolution_category: ResolutionCategory | None = None
    monitoring_record_id: str | None = None
    alert_ids: list[str] = Field(default_factory=list)
    compliance_reported: bool = False
    compliance_report_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=now)
    updated_at: UtcDatetime | None = None
    acknowledged_at: UtcDatetime | None = None
    time_to_acknowledge_minutes: float | None = None
    time_to_resolve_minutes: float | None = None
    # Deduplication across runs: one incident per model and metric while it is live.
    record_ids: list[str] = Field(default_factory=list, description="every record applied to this incident")
    occurrence_count: int = Field(default=1, ge=0, description="runs in which its metrics breached")
    first_seen_at: UtcDatetime | None = None
    last_seen_at: UtcDatetime | None = None
    recovered: bool = Field(default=False, description="its metrics were back to normal in the latest run")
    recovered_at: UtcDatetime | None = None
    escalated_at: UtcDatetime | None = Field(default=None, description="when a run raised it WARNING -> CRITICAL")
    acknowledged_by: str | None = None
    risk_acceptance: RiskAcceptance | None = None

    @model_validator(mode="after")
    def _schema_rules(self) -> Incident:
        if self.severity == Severity.CRITICAL and not self.assigned_to:
            raise ValueError("assigned_to: a CRITICAL incident must have assigned_to")
        if self.is_fairness and not self.affected_groups:
            raise ValueError("affected_groups: a fairness incident must list affected_groups")
        return self

    @property
    def is_fairness(self) -> bool:
        """Whether it names a fairness metric (policy 12: risk acceptance needs a compliance officer)."""
        return any(is_fairness_metric(m.metric_name) for m in self.metrics_triggered)

    @property
    def metric_names(self) -> list[str]:
        return [m.metric_name for m in self.metrics_triggered]
