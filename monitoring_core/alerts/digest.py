"""The daily email digest of WARNING alerts (policy sections 2.1 and 11).

Routing holds each WARNING's email as a digest item (one per recipient) instead of sending
it. :func:`send_digest` gathers a day's items into one digest delivery per recipient, whose
id is derived from the day and the recipient: a second call for the same day (another
process, or a rerun) finds it written and sends nothing more. The digest then goes out
with the next :func:`~.outbox.drain`, retried like any delivery. A day without items sends
nothing.
"""

from __future__ import annotations

import hashlib
import html
import itertools
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from .. import clock
from ..config import Settings, get_settings
from ..errors import Conflict, InvalidInput
from ..models.alerts import Alert, Channel
from ..models.delivery import AlertDelivery, DeliveryKind, DeliveryStatus
from .channels import alert_link
from .channels.email import Content


def digest_day_due(now: datetime, at: time) -> date:
    """The last day whose digest is due at ``now`` when digests go out daily at ``at`` (UTC)."""
    return (now - timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)).date() - timedelta(days=1)


def digest_id(day: date | str, recipient: str) -> str:
    return f"DIG-{day}-{hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]}"


def send_digest(store, day: date | None = None, *, settings: Settings | None = None,
                now: datetime | None = None) -> list[AlertDelivery]:
    """Queue one digest email per recipient for the WARNING alerts of ``day``.

    Parameters
    ----------
    store : Store
    day : date, optional
        The UTC day whose alerts are summarised (default: the last day whose digest time,
        ``alert_digest_time`` of the next day, has passed).
    settings : Settings, optional
    now : datetime, optional

    Returns
    -------
    list of AlertDelivery
        The digests written by this call (empty if the day had none or they were written before).
    """
    settings = settings or get_settings()
    at = now or clock.now()
    day = day or digest_day_due(at, settings.alert_digest_time)
    if day >= at.date():
        raise InvalidInput(f"the digest of {day} can be sent once that day is over (UTC)")
    items = store.deliveries.held_for_digest(day.isoformat())
    written = []
    for recipient, group in itertools.groupby(sorted(items, key=lambda d: d.recipient), key=lambda d: d.recipient):
        group = list(group)
        digest = AlertDelivery(
            delivery_id=digest_id(day, recipient), kind=DeliveryKind.DIGEST, channel=Channel.EMAIL,
            alert_ids=sorted({alert_id for item in group for alert_id in item.alert_ids}), role=group[0].role,
            recipient=recipient, digest_day=day.isoformat(), not_before=at, created_at=at)
        with store.transaction():
            try:
                written.append(store.deliveries.insert(digest))
            except Conflict:
                digest = store.deliveries.get(digest.delivery_id)  # written before: mark what it carries
            _mark_digested(store, group, digest)
    return written


def _mark_digested(store, items: Sequence[AlertDelivery], digest: AlertDelivery) -> None:
    carried = set(digest.alert_ids)
    for item in items:
        if set(item.alert_ids) <= carried:
            try:
                store.deliveries.update(item.delivery_id, {"status": DeliveryStatus.DIGESTED,
                                                           "digest_of": digest.delivery_id},
                                        expect={"status": DeliveryStatus.HELD})
            except Conflict:
                pass  # another process marked it meanwhile


def digest_content(day: str, alerts: Sequence[Alert], dashboard_url: str) -> Content:
    """Subject and bodies of a digest: the alerts grouped by model, oldest first."""
    ordered = sorted(alerts, key=lambda a: (a.model_id, a.created_at))
    subject = f"[Fairwatch] {len(alerts)} WARNING alert{'s' * (len(alerts) != 1)} on {day}"
    text_parts, html_parts = [], []
    for model_id, group in itertools.groupby(ordered, key=lambda a: a.model_id):
        lines = [(f"{a.created_at:%H:%M} UTC  {a.metric_name} = {a.metric_value:.4g} (threshold {a.threshold:.4g})",
                  alert_link(a, dashboard_url)) for a in group]
        text_parts.append(f"{model_id}\n" + "\n".join(f"  - {line}\n    {link}" for line, link in lines))
        items = "".join(f"<li><a href=\"{html.escape(link)}\">{html.escape(line)}</a></li>" for line, link in lines)
        html_parts.append(f"<h3>{html.escape(model_id)}</h3><ul>{items}</ul>")
    text = f"WARNING alerts of {day}, by model:\n\n" + "\n\n".join(text_parts) + "\n"
    return Content(subject, text, f"<p>WARNING alerts of {day}, by model:</p>" + "".join(html_parts))
