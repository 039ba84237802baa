"""Raising alerts: check suppression, deduplicate, record (architecture file 001, component 3).

The analysis loop calls :func:`raise_alert` for each WARNING or CRITICAL metric of a run
and enqueues deliveries only for results whose :attr:`RaisedAlert.deliver` is true; routing
and delivery live in :mod:`.routing` and :mod:`.outbox`.

Deduplication follows the source schema's query 3 and Prometheus Alertmanager's grouping
key: one alert per model, metric and severity within the window (6 hours by default,
counted from the alert's creation); a repeat inside it increments the alert's
``deduplicated_count`` and moves its ``last_seen_at``. The alert that absorbs repeats holds
the key in ``dedup_key`` under a unique index, and every change to it is a compare-and-set,
so two processes raising the same alert at once create one alert and count the other.
A suppressed alert is still recorded (status ``suppressed``, ``suppressed_by`` naming the
rule) and deduplicates only with suppressed alerts, so the first repeat after the rule
ends is delivered.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import audit, clock
from ..config import Settings
from ..errors import Conflict, StoreUnavailable
from ..models.alerts import Alert, AlertStatus, AlertSuppression
from ..models.audit import AuditEvent
from ..models.common import SYSTEM, Severity, to_utc_ms
from ..models.record import MonitoringRecord
from .outbox import enqueue
from .routing import routes_for

DEFAULT_DEDUP_WINDOW = timedelta(hours=6)
#: Meta-monitoring (policy section 8, architecture "monitoring the monitor").
SILENCE_METRIC = "meta:analysis_silence"
SILENCE_AFTER = timedelta(hours=12)
# A silence alert has no incident (no analysis ran to open one); it names the check instead.
SILENCE_INCIDENT_ID = SILENCE_METRIC
# Compare-and-set attempts before giving up on a key that many writers fight over.
RAISE_ATTEMPTS = 50


class Outcome(enum.StrEnum):
    NEW = "new"  # a new alert, to be delivered unless suppressed
    DEDUPLICATED = "deduplicated"  # folded into an alert raised within the window
    SUPPRESSED = "suppressed"  # a new alert recorded as suppressed, never delivered


@dataclass(frozen=True)
class RaisedAlert:
    """What :func:`raise_alert` did: the alert as stored now, and why."""

    alert: Alert
    outcome: Outcome
    #: The rule that silenced it (also for a repeat folded into a suppressed alert).
    suppression: AlertSuppression | None = None

    @property
    def deliver(self) -> bool:
        """Whether the caller must enqueue deliveries: only a new, unsuppressed alert."""
        return self.outcome is Outcome.NEW


def dedup_key(model_id: str, metric_name: str, severity: Severity, suppressed: bool) -> str:
    """The grouping key of an alert; suppressed alerts group apart from delivered ones."""
    return "|".join((model_id, metric_name, str(severity), *(["suppressed"] if suppressed else [])))


def raise_alert(store, *, incident_id: str, model_id: str, metric_name: str, value: float, threshold: float,
                severity: Severity | str, affected_groups: Sequence[str] = (), at: datetime | None = None,
                dedup_window: timedelta = DEFAULT_DEDUP_WINDOW) -> RaisedAlert | None:
    """Record an alert for one breached metric, unless it repeats one raised within the window.

    Parameters
    ----------
    store : Store
        The open store.
    incident_id, model_id, metric_name : str
        The incident the alert belongs to, its model and metric name (``psi:income``).
    value, threshold : float
        The metric's value and the bound it crossed.
    severity : Severity or str
        INFO raises nothing (the dashboard shows records); WARNING and CRITICAL raise.
    affected_groups : sequence of str, optional
        The groups a fairness breach affects (shown in notifications).
    at : datetime, optional
        When the breach was detected; default :func:`monitoring_core.clock.now`.
    dedup_window : timedelta, default 6 hours
        How long after an alert's creation its repeats are folded into it.

    Returns
    -------
    RaisedAlert or None
        None for INFO. Otherwise the stored alert and the outcome: ``new`` (deliver it),
        ``deduplicated`` (count incremented, nothing to deliver) or ``suppressed``.
        An escalation (WARNING then CRITICAL) is a new alert whose ``deduplicated_from``
        names the WARNING alert of the window.
    """
    severity = Severity(severity)
    if severity is Severity.INFO:
        return None
    at = to_utc_ms(at or clock.now())
    rule = next((r for r in store.suppressions.active(model_id, at) if r.covers(metric_name, severity, at)), None)
    key = dedup_key(model_id, metric_name, severity, suppressed=rule is not None)
    for _ in range(RAISE_ATTEMPTS):
        try:
            with store.transaction():
                holder = store.alerts.holding(key)
                if holder is not None and at - holder.created_at < dedup_window:
                    return RaisedAlert(_fold_repeat(store, holder, key, at), Outcome.DEDUPLICATED, rule)
                if holder is not None:
                    store.alerts.update(holder.alert_id, {"dedup_key": None}, expect={"dedup_key": key})
                alert = store.alerts.insert(Alert(
                    incident_id=incident_id, model_id=model_id, metric_name=metric_name, metric_value=value,
                    threshold=threshold, severity=severity, affected_groups=list(affected_groups),
                    status=AlertStatus.SUPPRESSED if rule else AlertStatus.PENDING,
                    suppressed_by=rule.suppression_id if rule else None,
                    deduplicated_from=_escalated_from(store, model_id, metric_name, severity, at - dedup_window),
                    created_at=at, last_seen_at=at, dedup_key=key))
                if rule is None:
                    return RaisedAlert(alert, Outcome.NEW)
                audit.record(store, AuditEvent.ALERT_SUPPRESSED, SYSTEM,
                             target={"model_id": model_id, "incident_id": incident_id, "alert_id": alert.alert_id,
                                     "suppression_id": rule.suppression_id},
                             details={"metric_name": metric_name, "severity": severity, "value": value,
                                      "threshold": threshold, "reason": rule.reason})
                return RaisedAlert(alert, Outcome.SUPPRESSED, rule)
        except Conflict:
            continue  # another raiser changed the key's holder meanwhile: read it again
    raise StoreUnavailable(f"could not raise the alert for {model_id} {metric_name} {severity}: "
                           "too many concurrent writers")


def _fold_repeat(store, holder: Alert, key: str, at: datetime) -> Alert:
    # Expecting the count as read makes a concurrent repeat a Conflict (then a retry), not a lost count.
    return store.alerts.update(holder.alert_id, {
        "deduplicated_count": holder.deduplicated_count + 1,
        "last_seen_at": max(at, holder.last_seen_at or holder.created_at),
        "updated_at": clock.now(),
    }, expect={"dedup_key": key, "deduplicated_count": holder.deduplicated_count})


def _escalated_from(store, model_id: str, metric_name: str, severity: Severity, since: datetime) -> str | None:
    if severity is not Severity.CRITICAL:
        return None
    warning = store.alerts.recent(model_id, metric_name, Severity.WARNING, since)
    return warning.alert_id if warning else None


def raise_silence_alert(store, model_id: str, last_analysis_at: datetime, at: datetime | None = None, *,
                        silence_after: timedelta = SILENCE_AFTER,
                        dedup_window: timedelta = DEFAULT_DEDUP_WINDOW) -> RaisedAlert | None:
    """Raise the meta-monitoring WARNING when a model's analysis has been silent too long.

    Parameters
    ----------
    store : Store
        The open store.
    model_id : str
        The model checked.
    last_analysis_at : datetime
        When its last analysis completed (or when monitoring started, if it never ran).
    at : datetime, optional
        The time of the check; default now.
    silence_after : timedelta, default 12 hours
        The silence that raises the alert (policy section 8).
    dedup_window : timedelta, default 6 hours
        As in :func:`raise_alert`: a check every few minutes raises one alert per window.

    Returns
    -------
    RaisedAlert or None
        None while the silence is shorter than ``silence_after``; otherwise as
        :func:`raise_alert` for metric ``meta:analysis_silence`` (value and threshold in
        hours, incident_id ``meta:analysis_silence`` since no analysis opened an incident).
    """
    at = to_utc_ms(at or clock.now())
    silence = at - to_utc_ms(last_analysis_at)
    if silence < silence_after:
        return None
    hour = timedelta(hours=1)
    return raise_alert(store, incident_id=SILENCE_INCIDENT_ID, model_id=model_id, metric_name=SILENCE_METRIC,
                       value=silence / hour, threshold=silence_after / hour, severity=Severity.WARNING, at=at,
                       dedup_window=dedup_window)


# -- what the analysis loop and the silence check call ----------------------------------------


def _deliver(store, raised: RaisedAlert | None, settings: Settings) -> None:
    if raised is not None and raised.deliver:
        enqueue(store, raised.alert, routes_for(raised.alert, settings))


def raise_for_record(store, record: MonitoringRecord, *, settings: Settings) -> list[RaisedAlert]:
    """One alert per WARNING or CRITICAL item of a completed run, tied to the incident that
    names it (:func:`monitoring_core.incidents.apply_record` has run); new, unsuppressed
    alerts are queued for delivery in the caller's unit of work."""
    incidents = [store.incidents.get(incident_id) for incident_id in record.incident_ids]
    incident_of = {name: incident for incident in incidents for name in incident.metric_names}
    dedup_window = timedelta(hours=settings.alert_dedup_hours)
    raised = []
    for breach in record.breaches():
        incident = incident_of[breach.metric_name]  # every breach has its incident: a KeyError is a bug
        result = raise_alert(store, incident_id=incident.incident_id, model_id=record.model_id,
                             metric_name=breach.metric_name, value=breach.value, threshold=breach.threshold,
                             severity=breach.severity, affected_groups=breach.affected_groups, at=record.timestamp,
                             dedup_window=dedup_window)
        if result is None:
            continue
        _deliver(store, result, settings)
        if result.alert.alert_id not in incident.alert_ids:
            incident = store.incidents.update(incident.incident_id,
                                              {"alert_ids": [*incident.alert_ids, result.alert.alert_id]})
            incident_of.update(dict.fromkeys(incident.metric_names, incident))
        raised.append(result)
    return raised


def raise_for_silence(store, report, *, settings: Settings) -> list[RaisedAlert]:
    """The meta-monitoring alert for each model of a health report that has been silent
    too long (policy 8: no completed analysis for 12 hours); queued for delivery."""
    dedup_window = timedelta(hours=settings.alert_dedup_hours)
    raised = []
    for model in report.stale_models:
        silent_since = model.last_analysis_at or model.registered_at
        with store.transaction():
            result = raise_silence_alert(store, model.model_id, silent_since, at=report.generated_at,
                                         silence_after=report.stale_after, dedup_window=dedup_window)
            _deliver(store, result, settings)
        if result is not None:
            raised.append(result)
    return raised
