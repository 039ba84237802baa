"""Suppression rules (``alert_suppressions``, policy section 12): create, approve, list, expire.

A rule silences a model's alerts during a time window: for one metric, a metric category
or every metric, at the chosen severities, for a stated reason. A rule that can silence a
fairness metric is created *pending* and takes effect only once a compliance officer or
admin other than its creator approves it; an accepted-risk rule lasts 30 days at most.
Each change is permission-checked (:mod:`monitoring_core.auth`) and audited in the same
unit of work. Silenced alerts are still recorded (:mod:`.manager`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .. import audit, clock
from ..auth import Permission, require
from ..errors import Conflict, Forbidden, InvalidInput
from ..models.alerts import AlertSuppression, MetricCategory, SuppressionStatus, SuppressionType
from ..models.audit import AuditEvent
from ..models.common import Actor, Severity, to_utc_ms
from ..storage.repositories import validated


def _audit(store, event: AuditEvent, actor: Actor, rule: AlertSuppression, **details) -> None:
    audit.record(store, event, actor, target={"model_id": rule.model_id, "suppression_id": rule.suppression_id},
                 details={"scope": rule.scope, "status": rule.status, **details})


def create(store, actor: Actor, *, model_id: str, end_time: datetime, reason: str,
           suppression_type: SuppressionType | str, metric_name: str | None = None,
           metric_category: MetricCategory | str | None = None,
           severities: Sequence[Severity | str] = tuple(Severity),
           start_time: datetime | None = None) -> AlertSuppression:
    """Create a suppression rule for a registered model.

    Parameters
    ----------
    store : Store
        The open store.
    actor : Actor
        Who creates it; needs ``manage_suppressions`` (admin, ML engineer).
    model_id : str
        A registered model.
    end_time : datetime
        End of the window (exclusive); must be after ``start_time`` and in the future.
    reason : str
        Why (shown with every alert it silences).
    suppression_type : {'maintenance', 'accepted_risk', 'false_positive', 'other'}
        ``accepted_risk`` windows last 30 days at most.
    metric_name, metric_category : str, optional
        The scope: one metric (``psi`` covers every ``psi:<feature>``) or one category
        (data, fairness, model, explanation); neither covers every metric.
    severities : sequence of {'INFO', 'WARNING', 'CRITICAL'}, default all
        The severities it silences.
    start_time : datetime, optional
        Start of the window; default now.

    Returns
    -------
    AlertSuppression
        Active at once, or ``pending`` (no effect) until approved when it can silence a
        fairness metric.

    Raises
    ------
    Forbidden, NotFound, InvalidInput
        Role without the permission; model not registered; a bad window, scope or type
        (nothing is written).
    """
    require(actor, Permission.MANAGE_SUPPRESSIONS)
    store.models.get(model_id)
    at = clock.now()
    start_time = to_utc_ms(start_time) if start_time is not None else at
    rule = validated(AlertSuppression, {
        "model_id": model_id, "metric_name": metric_name, "metric_category": metric_category,
        "suppress_severities": list(severities), "start_time": start_time, "end_time": end_time, "reason": reason,
        "suppression_type": suppression_type, "created_by": actor.user_id, "created_at": at, "status": "pending"})
    if not rule.covers_fairness:  # no approval needed: in force from start_time
        rule = validated(AlertSuppression, {**rule.model_dump(), "status": SuppressionStatus.ACTIVE})
    if rule.end_time <= at:
        raise InvalidInput(f"end_time {rule.end_time:%Y-%m-%d %H:%M} UTC is in the past: the suppression would "
                           "never take effect")
    with store.transaction():
        store.suppressions.insert(rule)
        _audit(store, AuditEvent.SUPPRESSION_CREATED, actor, rule, severities=rule.suppress_severities,
               start_time=rule.start_time, end_time=rule.end_time, suppression_type=rule.suppression_type,
               reason=rule.reason)
    return rule


def approve(store, actor: Actor, suppression_id: str) -> AlertSuppression:
    """Approve a pending rule (one that can silence fairness metrics), which makes it active.

    The approver needs ``approve_fairness_suppressions`` (compliance officer, admin) and
    must not be the rule's creator. Raises ``Forbidden`` otherwise, ``NotFound`` for an
    unknown id, ``Conflict`` if the rule is not pending or its window has ended.
    """
    require(actor, Permission.APPROVE_FAIRNESS_SUPPRESSIONS)
    rule = store.suppressions.get(suppression_id)
    if actor.user_id == rule.created_by:
        raise Forbidden(f"{actor.user_id} created suppression {suppression_id} and cannot approve it; another "
                        "compliance officer or admin must (policy section 12)")
    if rule.status != SuppressionStatus.PENDING:
        raise Conflict(f"suppression {suppression_id} is {rule.status}: only a pending suppression (one covering "
                       "fairness metrics) is approved")
    at = clock.now()
    if rule.end_time <= at:
        raise Conflict(f"suppression {suppression_id} ended at {rule.end_time:%Y-%m-%d %H:%M} UTC before it was "
                       "approved; create a new one")
    with store.transaction():
        approved = store.suppressions.update(suppression_id, {
            "status": SuppressionStatus.ACTIVE, "approved_by": actor.user_id, "approved_at": at,
        }, expect={"status": SuppressionStatus.PENDING})
        _audit(store, AuditEvent.SUPPRESSION_APPROVED, actor, approved, created_by=approved.created_by)
    return approved


def expire(store, actor: Actor, suppression_id: str) -> AlertSuppression:
    """End a rule now (pending or active): it silences nothing from now on.

    Needs ``manage_suppressions``. Raises ``NotFound`` for an unknown id and ``Conflict``
    if it already ended early.
    """
    require(actor, Permission.MANAGE_SUPPRESSIONS)
    rule = store.suppressions.get(suppression_id)
    if rule.status == SuppressionStatus.EXPIRED:
        raise Conflict(f"suppression {suppression_id} was already ended by {rule.ended_by} at "
                       f"{rule.ended_at:%Y-%m-%d %H:%M} UTC")
    with store.transaction():
        ended = store.suppressions.update(suppression_id, {
            "status": SuppressionStatus.EXPIRED, "ended_by": actor.user_id, "ended_at": clock.now(),
        }, expect={"status": rule.status})
        _audit(store, AuditEvent.SUPPRESSION_ENDED, actor, ended, previous_status=rule.status)
    return ended


def list_suppressions(store, actor: Actor, model_id: str | None = None,
                      include_expired: bool = False) -> list[AlertSuppression]:
    """Rules newest first (``view_incidents``); by default only those not ended."""
    require(actor, Permission.VIEW_INCIDENTS)
    return store.suppressions.list(model_id, include_expired=include_expired)
