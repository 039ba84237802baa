"""Incidents: opened and updated from monitoring records, then worked through the
lifecycle of policy section 3.

**From records** (:func:`apply_record`, called by the analysis run in its unit of work):
each WARNING/CRITICAL item of a record (``psi:income``, ``demographic_parity:gender``,
``aggregated_score``) belongs to at most one live incident of its model. An item that a
live incident already names updates that incident (latest values, occurrence count,
linked record ids, last seen); the items no live incident names open one new incident
together. An incident whose metrics are all back to normal stays open and is flagged
``recovered`` until a person resolves it. Applying the same record twice changes nothing:
every incident a record touched lists its id, so a retry after a crash (MongoDB has no
multi-document transaction) finishes what the first attempt began and repeats nothing.

**Lifecycle** (policy 3.1): ``open`` -> ``investigating`` (:func:`acknowledge`) ->
``resolved`` (:func:`resolve`), or ``accepted_risk`` (:func:`request_accept_risk`, then
:func:`approve_accept_risk` for fairness metrics; policy 12). Every transition checks the
actor's permission and the current status, writes with compare-and-set (two users making
the same transition: one wins, the other gets :class:`~monitoring_core.errors.Conflict`)
and audits in the same unit of work.

**Freeze** (policy 2.2): on models whose monitoring config sets
``freeze_on_critical_fairness``, a CRITICAL fairness breach marks the model frozen in the
registry; only a compliance officer or admin lifts it (:func:`unfreeze`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import audit, clock
from .auth import Permission, can, require
from .errors import Conflict, Forbidden, InvalidInput
from .models.alerts import MAX_ACCEPTED_RISK, AlertSuppression, SuppressionType
from .models.audit import AuditEvent
from .models.common import Actor, Severity
from .models.incidents import (
    Incident,
    IncidentStatus,
    ResolutionCategory,
    ResponseAction,
    RiskAcceptance,
    RootCauseCategory,
    TriggeredMetric,
    is_fairness_metric,
)
from .models.record import MonitoringRecord
from .models.registry import RegisteredModel

OPEN, INVESTIGATING = IncidentStatus.OPEN, IncidentStatus.INVESTIGATING
RESOLVED, ACCEPTED_RISK = IncidentStatus.RESOLVED, IncidentStatus.ACCEPTED_RISK
LIVE = (OPEN, INVESTIGATING)

# Policy 3.1 / 2.1: acknowledge within 15 minutes; investigate within 1 h (CRITICAL) or 24 h (WARNING).
ACKNOWLEDGE_TARGET = timedelta(minutes=15)
INVESTIGATE_TARGET = {Severity.CRITICAL: timedelta(hours=1), Severity.WARNING: timedelta(hours=24)}

# A run that races a person's transition on MongoDB re-reads and routes again (it is idempotent).
APPLY_ATTEMPTS = 5


# -- escalation (policy 3.2) --------------------------------------------------------------


@dataclass(frozen=True)
class EscalationTable:
    """Who owns a CRITICAL incident: fairness -> compliance officer; data, model,
    explanation or the aggregated score -> ML lead."""

    fairness_owner: str
    ml_owner: str

    @classmethod
    def from_settings(cls, settings=None) -> EscalationTable:
        from .config import get_settings

        settings = settings or get_settings()
        return cls(settings.escalation_fairness_owner, settings.escalation_ml_owner)

    def owner(self, metrics: Iterable[TriggeredMetric]) -> str:
        """The owner for these metrics: fairness wins when any CRITICAL one is a fairness metric."""
        critical = [m for m in metrics if m.severity == Severity.CRITICAL]
        return self.fairness_owner if any(is_fairness_metric(m.metric_name) for m in critical) else self.ml_owner


# -- from records -------------------------------------------------------------------------


def apply_record(store, record: MonitoringRecord, *, actor: Actor, now: datetime | None = None,
                 escalation: EscalationTable | None = None) -> list[str]:
    """Open or update the incidents of one monitoring record.

    Parameters
    ----------
    store : Store
        Runs in the caller's unit of work (``store.transaction()``) when there is one.
    record : MonitoringRecord
        Its :meth:`~MonitoringRecord.breaches` drive the incidents.
    actor : Actor
        Who ran the analysis (needs ``trigger_analysis``); recorded in the audit log.
    now : datetime, optional
        Time of the change (default: :func:`monitoring_core.clock.now`).
    escalation : EscalationTable, optional
        Owners of CRITICAL incidents (default: from the settings).

    Returns
    -------
    list of str
        Ids of the incidents this record opened, updated or marked recovered (also on a
        repeated call with the same record).
    """
    require(actor, Permission.TRIGGER_ANALYSIS)
    now = now or clock.now()
    escalation = escalation or EscalationTable.from_settings()
    breaches = {b.metric_name: b.model_copy(update={"last_seen_at": record.timestamp}) for b in record.breaches()}
    for attempt in range(APPLY_ATTEMPTS):
        try:
            with store.transaction():
                return _apply(store, record, breaches, actor, now, escalation)
        except Conflict:
            if attempt == APPLY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _apply(store, record: MonitoringRecord, breaches: dict[str, TriggeredMetric], actor: Actor, now: datetime,
           escalation: EscalationTable) -> list[str]:
    applied = store.incidents.linked_to(record.model_id, record.record_id)
    touched = [incident.incident_id for incident in applied]
    # Items an earlier attempt with this record already handled are not routed again.
    pending = {name: b for name, b in breaches.items() if not any(name in i.metric_names for i in applied)}
    live = [i for i in _routable(store, record.model_id, now) if i.incident_id not in touched]
    routed: dict[str, list[TriggeredMetric]] = {}
    for name, breach in list(pending.items()):
        incident = next((i for i in live if name in i.metric_names and _takes(i, breach)), None)
        if incident is not None:
            routed.setdefault(incident.incident_id, []).append(pending.pop(name))
    for incident in live:
        if incident.incident_id in routed:
            _record_occurrence(store, incident, routed[incident.incident_id], record, actor, now, escalation)
        elif not incident.recovered and not breaches.keys() & set(incident.metric_names):
            _record_recovery(store, incident, record, actor, now)
        else:
            continue
        touched.append(incident.incident_id)
    if pending:
        touched.append(_open(store, list(pending.values()), record, actor, now, escalation).incident_id)
    critical_fairness = [b for b in breaches.values()
                         if b.severity == Severity.CRITICAL and is_fairness_metric(b.metric_name)]
    if critical_fairness:
        _freeze_if_configured(store, record.model_id, touched, critical_fairness, actor, now)
    return touched


def _routable(store, model_id: str, now: datetime) -> list[Incident]:
    """Incidents later runs update: open or investigating ones, and accepted risks whose
    exception is still in force (policy 12: drift stays tracked while alerts are silent)."""
    found = store.incidents.list(model_id=model_id, statuses=[*LIVE, ACCEPTED_RISK])
    return [i for i in found if i.status in LIVE or (i.risk_acceptance and i.risk_acceptance.until
                                                         and i.risk_acceptance.until > now)]


def _takes(incident: Incident, breach: TriggeredMetric) -> bool:
    # An accepted risk covers its level only: a worse breach needs a new incident.
    return incident.status in LIVE or Severity(breach.severity).rank <= Severity(incident.severity).rank


def _groups(metrics: Iterable[TriggeredMetric]) -> list[str]:
    """Affected groups of every fairness metric, in order, once each (a fairness metric
    that names none is listed by its attribute, so the incident says what it concerns)."""
    groups: list[str] = []
    for m in metrics:
        named = m.affected_groups or ([m.attribute or m.metric_name] if is_fairness_metric(m.metric_name) else [])
        groups += [g for g in named if g not in groups]
    return groups


def _open(store, breaches: list[TriggeredMetric], record: MonitoringRecord, actor: Actor, now: datetime,
          escalation: EscalationTable) -> Incident:
    severity = Severity.worst(b.severity for b in breaches)
    critical = severity == Severity.CRITICAL
    incident = store.incidents.insert(Incident(
        model_id=record.model_id, severity=severity, metrics_triggered=breaches, affected_groups=_groups(breaches),
        monitoring_record_id=record.record_id, record_ids=[record.record_id], occurrence_count=1,
        first_seen_at=record.timestamp, last_seen_at=record.timestamp, created_at=now, updated_at=now,
        assigned_to=escalation.owner(breaches) if critical else None, assigned_at=now if critical else None))
    _audit(store, AuditEvent.INCIDENT_CREATED, actor, incident, record_id=record.record_id,
           severity=str(severity), metrics=incident.metric_names, affected_groups=incident.affected_groups,
           assigned_to=incident.assigned_to)
    return incident


def _record_occurrence(store, incident: Incident, breaches: list[TriggeredMetric], record: MonitoringRecord,
                       actor: Actor, now: datetime, escalation: EscalationTable) -> Incident:
    latest = {b.metric_name: b for b in breaches}
    metrics = [latest.pop(m.metric_name, m) for m in incident.metrics_triggered]
    changes: dict[str, Any] = {
        "metrics_triggered": metrics, "affected_groups": _groups(metrics),
        "record_ids": [*incident.record_ids, record.record_id], "occurrence_count": incident.occurrence_count + 1,
        "last_seen_at": record.timestamp, "recovered": False, "recovered_at": None, "updated_at": now}
    escalated = (incident.status in LIVE and incident.severity == Severity.WARNING
                 and any(b.severity == Severity.CRITICAL for b in breaches))
    if escalated:
        changes.update(severity=Severity.CRITICAL, escalated_at=now, assigned_to=escalation.owner(metrics),
                       assigned_at=now)
    updated = _write(store, incident, changes)
    _audit(store, AuditEvent.INCIDENT_UPDATED, actor, updated, record_id=record.record_id,
           change="escalated" if escalated else "occurrence", occurrence_count=updated.occurrence_count,
           severity=str(updated.severity), assigned_to=updated.assigned_to)
    return updated


def _record_recovery(store, incident: Incident, record: MonitoringRecord, actor: Actor, now: datetime) -> Incident:
    updated = _write(store, incident, {"recovered": True, "recovered_at": record.timestamp, "updated_at": now,
                                       "record_ids": [*incident.record_ids, record.record_id]})
    _audit(store, AuditEvent.INCIDENT_UPDATED, actor, updated, record_id=record.record_id, change="recovered")
    return updated


def _write(store, incident: Incident, changes: Mapping[str, Any]) -> Incident:
    """Compare-and-set against what was read: any change since, however close in time, raises ``Conflict``.

    The whole document is the expectation, not ``updated_at``: two writes in the same
    millisecond (the store's precision) share a stamp, so a stamp is no version.
    """
    return store.incidents.update(incident.incident_id, changes, expect=dict(incident))


def _audit(store, event: AuditEvent, actor: Actor, incident: Incident, **details: Any) -> None:
    audit.record(store, event, actor, target={"model_id": incident.model_id, "incident_id": incident.incident_id,
                                             "record_id": details.get("record_id")}, details=details)


# -- lifecycle (policy section 3) ---------------------------------------------------------


def _minutes(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 60, 2)


def _transition(store, incident_id: str, *, actor: Actor, permission: Permission, allowed: Iterable[IncidentStatus],
                refusal: str, event: AuditEvent, changes: Callable[[Incident, datetime], dict[str, Any]],
                details: Callable[[Incident], dict[str, Any]] | None = None) -> Incident:
    """Check the actor and the current status, write ``changes(incident, now)`` with
    compare-and-set and audit it, all in one unit of work."""
    require(actor, permission)
    now = clock.now()
    with store.transaction():
        incident = store.incidents.get(incident_id)
        if incident.status not in allowed:
            raise Conflict(f"incident {incident_id} is {incident.status}: {refusal}")
        updated = _write(store, incident, {**changes(incident, now), "updated_at": now})
        _audit(store, event, actor, updated, status=str(updated.status), **(details(updated) if details else {}))
    return updated


def acknowledge(store, incident_id: str, *, actor: Actor, notes: str | None = None) -> Incident:
    """``open`` -> ``investigating``; sets ``acknowledged_at`` and ``time_to_acknowledge_minutes``
    and assigns the acknowledger when nobody is assigned."""
    def changes(incident: Incident, now: datetime) -> dict[str, Any]:
        found = {"status": INVESTIGATING, "acknowledged_at": now, "acknowledged_by": actor.user_id,
                 "time_to_acknowledge_minutes": _minutes(incident.created_at, now)}
        if not incident.assigned_to:
            found.update(assigned_to=actor.user_id, assigned_at=now)
        if notes:
            found["response_actions"] = [*incident.response_actions, ResponseAction(
                action="acknowledged", taken_by=actor.user_id, taken_at=now, notes=notes)]
        return found

    return _transition(store, incident_id, actor=actor, permission=Permission.MANAGE_INCIDENTS, allowed=[OPEN],
                       refusal="only an open incident can be acknowledged (policy 3.1: open -> investigating)",
                       event=AuditEvent.INCIDENT_ACKNOWLEDGED, changes=changes,
                       details=lambda i: {"time_to_acknowledge_minutes": i.time_to_acknowledge_minutes})


def assign(store, incident_id: str, assignee: str, *, actor: Actor) -> Incident:
    """Assign an open or investigating incident to ``assignee`` (a user id)."""
    if not assignee or not assignee.strip():
        raise InvalidInput("assignee: give the user id to assign the incident to")
    return _transition(store, incident_id, actor=actor, permission=Permission.MANAGE_INCIDENTS, allowed=LIVE,
                       refusal="only an open or investigating incident can be assigned",
                       event=AuditEvent.INCIDENT_ASSIGNED,
                       changes=lambda i, now: {"assigned_to": assignee.strip(), "assigned_at": now},
                       details=lambda i: {"assigned_to": i.assigned_to})


def add_action(store, incident_id: str, action: str, *, actor: Actor, notes: str | None = None) -> Incident:
    """Record a response action (who, when, what, notes); also after closing, for the post-mortem."""
    if not action or not action.strip():
        raise InvalidInput("action: say what was done")
    return _transition(store, incident_id, actor=actor, permission=Permission.MANAGE_INCIDENTS,
                       allowed=IncidentStatus, refusal="", event=AuditEvent.INCIDENT_ACTION_ADDED,
                       changes=lambda i, now: {"response_actions": [*i.response_actions, ResponseAction(
                           action=action.strip(), taken_by=actor.user_id, taken_at=now, notes=notes)]},
                       details=lambda i: {"action": action.strip(), "notes": notes})


def _category(enum_type, value, field: str):
    try:
        return enum_type(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(e.value for e in enum_type)}") from None


def resolve(store, incident_id: str, *, actor: Actor, root_cause_category: str, resolution_category: str,
            notes: str, root_cause: str | None = None) -> Incident:
    """``investigating`` -> ``resolved`` with the root cause and resolution categories of the
    incidents schema; sets ``time_to_resolve_minutes``."""
    cause = _category(RootCauseCategory, root_cause_category, "root_cause_category")
    resolution = _category(ResolutionCategory, resolution_category, "resolution_category")
    if resolution == ResolutionCategory.ACCEPTED_RISK:
        raise InvalidInput("resolution_category: accepting a risk is its own step (accept-risk; policy 12), "
                           "with a rationale and an approval")
    if not notes or not notes.strip():
        raise InvalidInput("notes: document how the incident was resolved (policy 3.1)")
    return _transition(
        store, incident_id, actor=actor, permission=Permission.MANAGE_INCIDENTS, allowed=[INVESTIGATING],
        refusal="only an investigating incident can be resolved (policy 3.1: acknowledge it first, then resolve)",
        event=AuditEvent.INCIDENT_RESOLVED,
        changes=lambda i, now: {"status": RESOLVED, "resolved_by": actor.user_id, "resolved_at": now,
                                "root_cause_category": cause, "root_cause": root_cause,
                                "resolution_category": resolution, "resolution_notes": notes.strip(),
                                "time_to_resolve_minutes": _minutes(i.created_at, now)},
        details=lambda i: {"root_cause_category": str(cause), "resolution_category": str(resolution),
                           "time_to_resolve_minutes": i.time_to_resolve_minutes})


# -- accepting a risk (policy section 12) -------------------------------------------------


def approval_permission(incident: Incident) -> Permission:
    """What approving this incident's risk acceptance takes: fairness sign-off for fairness metrics."""
    return Permission.APPROVE_FAIRNESS_SUPPRESSIONS if incident.is_fairness else Permission.MANAGE_SUPPRESSIONS


def request_accept_risk(store, incident_id: str, *, actor: Actor, rationale: str,
                        days: int = MAX_ACCEPTED_RISK.days) -> Incident:
    """Ask to accept an incident's risk for ``days`` (at most 30).

    A fairness incident waits for :func:`approve_accept_risk` by a compliance officer or
    admin other than the requester. Otherwise a requester who may manage suppressions
    accepts at once; anyone else's request waits for such a person.
    """
    if not rationale or not rationale.strip():
        raise InvalidInput("rationale: accepting a risk needs a documented rationale (policy 12)")
    if not 0 < days <= MAX_ACCEPTED_RISK.days:
        raise InvalidInput(f"days: an accepted risk lasts 1 to {MAX_ACCEPTED_RISK.days} days (policy 12), got {days}")
    require(actor, Permission.MANAGE_INCIDENTS)
    now = clock.now()
    with store.transaction():
        incident = _accept_risk_target(store, incident_id)
        if incident.risk_acceptance is not None:
            raise Conflict(f"incident {incident_id} already has a risk acceptance request by "
                           f"{incident.risk_acceptance.requested_by}; approve it instead")
        request = RiskAcceptance(rationale=rationale.strip(), days=days, requested_by=actor.user_id, requested_at=now)
        updated = _write(store, incident, {"risk_acceptance": request, "updated_at": now})
        _audit(store, AuditEvent.INCIDENT_RISK_ACCEPTANCE_REQUESTED, actor, updated, rationale=request.rationale,
               days=days)
        if not incident.is_fairness and can(actor, approval_permission(incident)):
            updated = _accept(store, updated, actor, now)
    return updated


def approve_accept_risk(store, incident_id: str, *, actor: Actor) -> Incident:
    """Approve a pending risk acceptance: the incident becomes ``accepted_risk`` and its
    metrics' alerts are suppressed until the accepted period ends."""
    require(actor, Permission.MANAGE_INCIDENTS)
    now = clock.now()
    with store.transaction():
        incident = _accept_risk_target(store, incident_id)
        request = incident.risk_acceptance
        if request is None:
            raise Conflict(f"incident {incident_id} has no risk acceptance request to approve (request it first)")
        if not can(actor, approval_permission(incident)):
            raise Forbidden(f"{actor.user_id} ({actor.role}) may not approve this risk acceptance: "
                            + ("a fairness incident needs a compliance officer or admin (policy 12)"
                               if incident.is_fairness else "it needs a person who may manage suppressions"))
        if request.requested_by == actor.user_id:
            raise Forbidden(f"{actor.user_id} requested this risk acceptance and may not approve it too "
                            "(policy 12: four eyes)")
        updated = _accept(store, incident, actor, now)
    return updated


def _accept_risk_target(store, incident_id: str) -> Incident:
    incident = store.incidents.get(incident_id)
    if incident.status not in LIVE:
        raise Conflict(f"incident {incident_id} is {incident.status}: only an open or investigating incident's risk "
                       "can be accepted (policy 12)")
    return incident


def _accept(store, incident: Incident, approver: Actor, now: datetime) -> Incident:
    request = incident.risk_acceptance
    until = now + timedelta(days=request.days)
    suppressions = [store.suppressions.insert(s)
                    for s in accepted_risk_suppressions(incident, request, approver.user_id, now, until)]
    approved = request.model_copy(update={"approved_by": approver.user_id, "approved_at": now, "until": until,
                                          "suppression_ids": [s.suppression_id for s in suppressions]})
    updated = _write(store, incident, {
        "status": ACCEPTED_RISK, "risk_acceptance": approved, "resolved_by": approver.user_id, "resolved_at": now,
        "resolution_category": ResolutionCategory.ACCEPTED_RISK, "resolution_notes": request.rationale,
        "time_to_resolve_minutes": _minutes(incident.created_at, now), "updated_at": now})
    _audit(store, AuditEvent.INCIDENT_RISK_ACCEPTED, approver, updated, requested_by=request.requested_by,
           approved_by=approver.user_id, until=until, suppression_ids=approved.suppression_ids)
    for suppression in suppressions:
        audit.record(store, AuditEvent.SUPPRESSION_CREATED, approver,
                     target={"model_id": incident.model_id, "incident_id": incident.incident_id,
                             "suppression_id": suppression.suppression_id},
                     details={"metric_name": suppression.metric_name, "until": until,
                              "type": str(suppression.suppression_type)})
    return updated


def accepted_risk_suppressions(incident: Incident, request: RiskAcceptance, approved_by: str, start: datetime,
                               end: datetime) -> list[AlertSuppression]:
    """One accepted-risk suppression per metric of the incident, silencing its accepted
    level only (a WARNING accepted does not silence a later CRITICAL)."""
    levels = [Severity.WARNING] if incident.severity == Severity.WARNING else [Severity.WARNING, Severity.CRITICAL]
    # A risk that needs no second person (not fairness) is accepted by its requester alone:
    # a suppression records an approver only when it is someone else.
    approved_by = None if approved_by == request.requested_by else approved_by
    return [AlertSuppression(model_id=incident.model_id, metric_name=name, suppress_severities=levels,
                             start_time=start, end_time=end, reason=f"{incident.incident_id}: {request.rationale}",
                             suppression_type=SuppressionType.ACCEPTED_RISK, created_by=request.requested_by,
                             approved_by=approved_by, created_at=start)
            for name in incident.metric_names]


# -- SLA (policy 3.1) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sla:
    """Targets, time spent and breach flags of one incident at a moment.

    Acknowledge: from creation to ``acknowledged_at`` (or the close). Investigate: from
    creation (or the escalation to CRITICAL) to the first documented response action (or
    the close); the target is 1 h for CRITICAL, 24 h for WARNING.
    """

    acknowledge_target_minutes: float
    acknowledge_elapsed_minutes: float
    acknowledge_breached: bool
    investigate_target_minutes: float
    investigate_elapsed_minutes: float
    investigate_breached: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sla(incident: Incident, now: datetime | None = None) -> Sla:
    """The incident's SLA figures at ``now`` (default: the clock's now)."""
    now = now or clock.now()
    closed = incident.resolved_at
    acknowledged = min(t for t in (incident.acknowledged_at, closed, now) if t is not None)
    escalated = incident.severity == Severity.CRITICAL and incident.escalated_at is not None
    start = incident.escalated_at if escalated else incident.created_at
    # Acknowledging is not investigating: only later documented actions (or the close) count.
    responses = [a.taken_at for a in incident.response_actions if a.taken_at >= start and a.action != "acknowledged"]
    investigated = min(t for t in (*responses, closed, now) if t is not None)
    target = INVESTIGATE_TARGET[Severity(incident.severity)]
    return Sla(ACKNOWLEDGE_TARGET / timedelta(minutes=1), _minutes(incident.created_at, acknowledged),
               acknowledged - incident.created_at > ACKNOWLEDGE_TARGET, target / timedelta(minutes=1),
               _minutes(start, investigated), investigated - start > target)


# -- model freeze (policy 2.2) ------------------------------------------------------------


def _freeze_if_configured(store, model_id: str, incident_ids: list[str], breaches: list[TriggeredMetric],
                          actor: Actor, now: datetime) -> None:
    model = store.models.find(model_id)
    if model is None or model.frozen or not model.monitoring.freeze_on_critical_fairness:
        return
    # An accepted risk (policy 12) was a decision not to act: its breaches freeze nothing.
    incident = next((i for i in (store.incidents.get(x) for x in incident_ids)
                     if i.status in LIVE and any(b.metric_name in i.metric_names for b in breaches)), None)
    if incident is None:
        return
    reason = f"CRITICAL fairness drift ({', '.join(b.metric_name for b in breaches)}); policy 2.2"
    _set_frozen(store, model, {"frozen": True, "frozen_at": now, "frozen_reason": reason,
                               "frozen_by_incident": incident.incident_id, "updated_at": now})
    audit.record(store, AuditEvent.MODEL_FROZEN, actor,
                 target={"model_id": model_id, "incident_id": incident.incident_id}, details={"reason": reason})


def _set_frozen(store, model: RegisteredModel, changes: dict[str, Any]) -> RegisteredModel:
    return store.models.update(model.model_id, changes, expect={"frozen": model.frozen})


def unfreeze(store, model_id: str, *, actor: Actor, reason: str) -> RegisteredModel:
    """Lift a model freeze (compliance officer or admin only; policy 2.2 / 3.3)."""
    if not can(actor, Permission.APPROVE_FAIRNESS_SUPPRESSIONS):
        raise Forbidden(f"{actor.user_id} ({actor.role}) may not lift a model freeze: only a compliance officer "
                        "or admin can (policy 2.2)")
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the freeze can be lifted")
    now = clock.now()
    with store.transaction():
        model = store.models.get(model_id)
        if not model.frozen:
            raise Conflict(f"model {model_id} is not frozen")
        updated = _set_frozen(store, model, {"frozen": False, "frozen_at": None, "frozen_reason": None,
                                             "frozen_by_incident": None, "updated_at": now})
        audit.record(store, AuditEvent.MODEL_UNFROZEN, actor,
                     target={"model_id": model_id, "incident_id": model.frozen_by_incident},
                     details={"reason": reason.strip(), "frozen_since": model.frozen_at})
    return updated


def is_frozen(store, model_id: str) -> bool:
    """Whether serving should route this model's predictions to manual review (policy 3.3)."""
    model = store.models.find(model_id)
    return bool(model and model.frozen)
