"""The notification outbox: deliveries stored with their alert, sent by :func:`drain`.

Learnt from Prometheus Alertmanager's notification log: what was sent, and what is still
to send, lives in the database, so a restart neither loses nor repeats a notification.

- :func:`enqueue` writes an alert's deliveries in the caller's unit of work (with the alert).
- :func:`drain` (a scheduler job) claims each due delivery, a compare-and-set on its
  revision that holds for ``lease``; of two processes only one gets it, and the claim of a
  process that dies expires. It then sends, and records the attempt on the delivery and on
  the alert(s): sent; retry later (exponential backoff with full jitter, or the receiver's
  ``Retry-After``); or failed for good (a refusal such as HTTP 4xx, or still failing after
  ``alert_retry_max_hours``). An escalation whose alert was handled in time is cancelled.

A process that dies after sending and before recording sends that message again once its
claim expires: delivery is at least once, exactly once whenever the recorder survives.
Attempt errors pass through :func:`~.channels.redact` before they are stored or logged.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import clock
from ..config import Settings, get_settings
from ..errors import Conflict, StoreUnavailable
from ..models.alerts import Alert, AlertStatus, Channel, DeliveryAttempt
from ..models.delivery import AlertDelivery, DeliveryKind, DeliveryStatus
from ..storage.repositories import WRITE_ATTEMPTS
from .channels import DeliveryFailed, email, redact, secret_values, slack
from .digest import digest_content
from .routing import Route

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
# The alert statuses that make an escalation unnecessary.
_HANDLED = {AlertStatus.ACKNOWLEDGED: {AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED},
            AlertStatus.RESOLVED: {AlertStatus.RESOLVED}}


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``n`` (1-based): uniform in ``[0, min(cap, base * 2**(n-1))]``
    ("full jitter", so senders that failed together do not retry together)."""

    base: timedelta = timedelta(seconds=15)
    cap: timedelta = timedelta(minutes=30)

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempt - 1))
        return timedelta(milliseconds=round(rng.uniform(0.0, ceiling) * 1000))  # stored times are in ms


@dataclass
class DrainReport:
    """What one :func:`drain` did, by outcome; ``skipped`` were claimed by another sender."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0


def enqueue(store, alert: Alert, routes: Sequence[Route]) -> list[AlertDelivery]:
    """Write the deliveries of ``alert`` (call it in the unit of work that stores the alert).

    Digest items wait (``held``) for :func:`~.digest.send_digest`; the others are due at
    the alert's creation plus the route's delay.
    """
    deliveries = [AlertDelivery(
        kind=route.kind, channel=route.channel, alert_ids=[alert.alert_id], model_id=alert.model_id,
        role=route.role, recipient=route.recipient, mention_channel=route.mention_channel, reason=route.reason,
        cancel_when=route.cancel_when, not_before=alert.created_at + route.delay,
        status=DeliveryStatus.HELD if route.kind == DeliveryKind.DIGEST_ITEM else DeliveryStatus.PENDING,
        digest_day=alert.created_at.date().isoformat() if route.kind == DeliveryKind.DIGEST_ITEM else None,
    ) for route in routes]
    for delivery in deliveries:
        store.deliveries.insert(delivery)
    return deliveries


def sender_id() -> str:
    """A name for this process as a claim owner (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def drain(store, now: datetime | None = None, *, limit: int = 100, settings: Settings | None = None,
          owner: str | None = None, rng: random.Random | None = None, backoff: Backoff = Backoff(),
          lease: timedelta = DEFAULT_LEASE) -> DrainReport:
    """Send the deliveries due at ``now`` (default: :func:`clock.now`), at most ``limit``.

    Parameters
    ----------
    store : Store
    now : datetime, optional
    limit : int
        Deliveries taken in this call; the rest wait for the next one.
    settings : Settings, optional
        Channels and recipients (default: the process settings).
    owner : str, optional
        Claim owner (default: :func:`sender_id`).
    rng : random.Random, optional
        Jitter source (seed it in tests).
    backoff : Backoff
    lease : timedelta
        How long a claim holds; longer than a send can take (the send timeout).

    Returns
    -------
    DrainReport
    """
    settings = settings or get_settings()
    owner, rng = owner or sender_id(), rng or random.Random()
    report = DrainReport()
    for due in store.deliveries.due(now or clock.now(), limit):
        at = now or clock.now()  # read again: a claim made late in a long drain still holds a full lease
        claimed = store.deliveries.claim(due.delivery_id, owner, at, at + lease)
        if claimed is None:
            report.skipped += 1
            continue
        outcome = _process(store, claimed, settings, owner, rng, backoff, now)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _process(store, delivery: AlertDelivery, settings: Settings, owner: str, rng: random.Random, backoff: Backoff,
             now: datetime | None) -> str:
    if _made_unnecessary(store, delivery):
        _finish(store, delivery, owner, {"status": DeliveryStatus.CANCELLED})
        log.info("delivery %s cancelled: alert %s handled in time", delivery.delivery_id, delivery.alert_ids[0])
        return "cancelled"
    try:
        ref = _send(store, delivery, settings)
    except DeliveryFailed as exc:
        return _failed(store, delivery, settings, owner, rng, backoff, exc, now or clock.now())
    at = now or clock.now()
    attempt = DeliveryAttempt(delivery_id=delivery.delivery_id, channel=delivery.channel, at=at, outcome="sent")
    if _finish(store, delivery, owner, {"status": DeliveryStatus.SENT, "sent_at": at, "message_ref": ref,
                                        "attempts": [*delivery.attempts, attempt]}):
        _record_on_alerts(store, delivery, attempt, ref)
        log.info("delivery %s sent by %s to %s", delivery.delivery_id, delivery.channel, delivery.role or "channel")
    return "sent"


def _failed(store, delivery: AlertDelivery, settings: Settings, owner: str, rng: random.Random, backoff: Backoff,
            exc: DeliveryFailed, at: datetime) -> str:
    error = redact(exc.reason, secret_values(settings))
    first = delivery.attempts[0].at if delivery.attempts else at
    give_up_at = first + timedelta(hours=settings.alert_retry_max_hours)
    final = exc.final or at >= give_up_at
    outcome = "failed" if final else "retry"
    attempt = DeliveryAttempt(delivery_id=delivery.delivery_id, channel=delivery.channel, at=at, outcome=outcome,
                              error=error)
    changes = {"attempts": [*delivery.attempts, attempt]}
    if final:
        why = error if exc.final else f"still failing after {len(changes['attempts'])} attempts: {error}"
        changes |= {"status": DeliveryStatus.FAILED, "final_error": why}
        log.warning("delivery %s failed for good: %s", delivery.delivery_id, why)
    else:
        wait = (timedelta(seconds=exc.retry_after) if exc.retry_after is not None
                else backoff.delay(len(changes["attempts"]), rng))
        changes |= {"status": DeliveryStatus.PENDING, "not_before": min(at + wait, give_up_at)}
        log.warning("delivery %s will be retried at %s: %s", delivery.delivery_id,
                    changes["not_before"].isoformat(), error)
    if _finish(store, delivery, owner, changes):
        _record_on_alerts(store, delivery, attempt, None)
    return "failed" if final else "retried"


def _made_unnecessary(store, delivery: AlertDelivery) -> bool:
    if delivery.cancel_when is None:
        return False
    alert = store.alerts.find(delivery.alert_ids[0])
    return alert is None or alert.status in _HANDLED[delivery.cancel_when]


def _send(store, delivery: AlertDelivery, settings: Settings) -> str | None:
    if delivery.kind == DeliveryKind.DIGEST:
        alerts = [alert for alert_id in delivery.alert_ids if (alert := store.alerts.find(alert_id))]
        if not alerts:
            raise DeliveryFailed("every alert of this digest was deleted", final=True)
        content = digest_content(delivery.digest_day, alerts, settings.dashboard_url)
        return email.send(email.compose(content, sender=settings.smtp_from, recipient=delivery.recipient), settings)
    alert = store.alerts.find(delivery.alert_ids[0])
    if alert is None:
        raise DeliveryFailed(f"alert {delivery.alert_ids[0]} was deleted before it could be sent", final=True)
    incident = store.incidents.find(alert.incident_id)
    groups = incident.affected_groups if incident else []
    if delivery.channel == Channel.SLACK:
        url = settings.alert_contacts(alert.model_id).slack_webhook_url
        if url is None:
            raise DeliveryFailed(f"no Slack webhook is configured for model {alert.model_id!r}", final=True)
        payload = slack.slack_message(alert, affected_groups=groups, dashboard_url=settings.dashboard_url,
                                      mention_channel=delivery.mention_channel, reason=delivery.reason)
        return slack.post(url.get_secret_value(), payload, timeout=settings.alert_send_timeout_s)
    content = email.alert_content(alert, affected_groups=groups, dashboard_url=settings.dashboard_url,
                                  reason=delivery.reason)
    return email.send(email.compose(content, sender=settings.smtp_from, recipient=delivery.recipient), settings)


def _finish(store, delivery: AlertDelivery, owner: str, changes: dict) -> bool:
    """Write the outcome if our claim still holds (False: it expired and another sender
    took the delivery, whose record wins)."""
    try:
        store.deliveries.update(delivery.delivery_id, {**changes, "claimed_by": None, "claim_expires_at": None},
                                expect={"claimed_by": owner, "not_before": delivery.not_before})
    except Conflict:
        log.warning("delivery %s: the claim of %s expired before its outcome was recorded", delivery.delivery_id,
                    owner)
        return False
    return True


def _record_on_alerts(store, delivery: AlertDelivery, attempt: DeliveryAttempt, ref: str | None) -> None:
    """Append the attempt to each alert of the delivery; a sent one also marks the channel
    notified and keeps the first message reference (Slack ts, email Message-ID)."""
    for alert_id in delivery.alert_ids:
        for _ in range(WRITE_ATTEMPTS):
            alert = store.alerts.find(alert_id)
            if alert is None:
                break  # deleted meanwhile (retention): the delivery keeps the record
            changes = {"delivery_attempts": [*alert.delivery_attempts, attempt], "updated_at": attempt.at}
            if attempt.outcome == "sent":
                changes["channels_notified"] = list(dict.fromkeys([*alert.channels_notified, delivery.channel]))
                ref_field = "slack_message_ts" if delivery.channel == Channel.SLACK else "email_message_id"
                if getattr(alert, ref_field) is None and ref is not None:
                    changes[ref_field] = ref
            try:
                store.alerts.update(alert_id, changes, expect={"delivery_attempts": alert.delivery_attempts})
                break
            except Conflict:
                continue  # the alert changed meanwhile (another channel's attempt): read it again
        else:
            raise StoreUnavailable(f"could not record a delivery attempt on alert {alert_id}: too many writers")
