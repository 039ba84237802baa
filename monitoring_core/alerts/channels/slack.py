"""Slack through an incoming webhook: a Block Kit message (architecture file 001, component
3) posted with the standard library."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from ... import clock
from ...models.alerts import Alert
from ...models.common import Severity
from ...models.incidents import is_fairness_metric
from . import DeliveryFailed, alert_link

_EMOJI = {Severity.CRITICAL: "🚨", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}


def slack_message(alert: Alert, *, affected_groups: list[str], dashboard_url: str, mention_channel: bool = False,
                  reason: str | None = None) -> dict[str, Any]:
    """The Block Kit payload of an alert.

    Parameters
    ----------
    alert : Alert
    affected_groups : list of str
        The incident's affected groups ("none listed" when empty).
    dashboard_url : str
        Base URL of the dashboard; the button opens the alert's incident there.
    mention_channel : bool
        Notify everyone in the channel (``<!channel>``), for CRITICAL alerts.
    reason : str, optional
        Why this message is sent, when it is not the first notification (an escalation).
    """
    emoji = _EMOJI[alert.severity]
    kind = "Fairness drift" if is_fairness_metric(alert.metric_name) else "Drift"
    summary = f"{emoji} {alert.severity}: {kind.lower()} detected on {alert.model_id} ({alert.metric_name})"
    fields = [f"*Model:* {alert.model_id}", f"*Metric:* {alert.metric_name}",
              f"*Value:* {alert.metric_value:.4g} (threshold: {alert.threshold:.4g})", f"*Severity:* {alert.severity}",
              f"*Affected groups:* {', '.join(affected_groups) or 'none listed'}", f"*Incident:* {alert.incident_id}"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{emoji} {kind} alert"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": text} for text in fields]},
    ]
    if mention_channel or reason:
        context = " ".join(part for part in ("<!channel>" if mention_channel else "", reason or "") if part)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": context}})
    blocks.append({"type": "actions", "elements": [{
        "type": "button", "text": {"type": "plain_text", "text": "View incident"},
        "url": alert_link(alert, dashboard_url)}]})
    return {"text": f"<!channel> {summary}" if mention_channel else summary, "blocks": blocks}


def post(url: str, payload: dict[str, Any], *, timeout: float) -> str | None:
    """POST ``payload`` to an incoming webhook; the message ``ts`` when the answer gives one
    (incoming webhooks answer a bare ``ok``, so usually None).

    Raises
    ------
    DeliveryFailed
        ``final`` for a 4xx other than 429; ``retry_after`` from a 429's ``Retry-After``;
        otherwise retryable (5xx, timeout, connection refused or dropped).
    """
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise _refusal(exc) from None
    except TimeoutError:
        raise DeliveryFailed(f"Slack did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(f"cannot reach Slack: {exc.reason}") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise DeliveryFailed(f"Slack connection failed: {type(exc).__name__}: {exc}") from None
    return _message_ts(body)


def _refusal(exc: urllib.error.HTTPError) -> DeliveryFailed:
    detail = exc.read(300).decode("utf-8", "replace").strip()
    reason = f"Slack answered HTTP {exc.code}" + (f": {detail}" if detail else "")
    if exc.code == 429:
        return DeliveryFailed(reason, retry_after=_retry_after(exc.headers.get("Retry-After")))
    return DeliveryFailed(reason, final=400 <= exc.code < 500)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - clock.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _message_ts(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return str(answer["ts"]) if isinstance(answer, dict) and answer.get("ts") else None
