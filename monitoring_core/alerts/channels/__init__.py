"""What every channel shares: the failure a sender reports, the link to the dashboard, and
the one place where secrets are taken out of text before it is logged or stored."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

from ...config import Settings
from ...models.alerts import Alert

#: The dashboard page an alert links to.
INCIDENT_PAGE = "incident_timeline"
REDACTED = "[redacted]"


class DeliveryFailed(Exception):
    """A channel could not deliver a message.

    Parameters
    ----------
    reason : str
        What went wrong, for the person reading the delivery's attempts.
    final : bool
        Retrying cannot help (the receiver refused the message or the login).
    retry_after : float, optional
        Seconds the receiver asked us to wait (HTTP ``Retry-After``).
    """

    def __init__(self, reason: str, *, final: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.final, self.retry_after = reason, final, retry_after


def alert_link(alert: Alert, dashboard_url: str) -> str:
    """The dashboard page of the alert's incident."""
    query = urlencode({"model": alert.model_id, "incident": alert.incident_id})
    return f"{dashboard_url.rstrip('/')}/{INCIDENT_PAGE}?{query}"


def secret_values(settings: Settings) -> list[str]:
    """Every secret a notification could leak: webhook URLs (and their paths, which carry
    the token on their own) and the SMTP password."""
    urls = [settings.slack_webhook_url, *(c.slack_webhook_url for c in settings.alert_models.values())]
    values = [url.get_secret_value() for url in urls if url is not None]
    values += [urlsplit(url).path for url in values]
    if settings.smtp_password is not None:
        values.append(settings.smtp_password.get_secret_value())
    return [value for value in values if len(value) > 1]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``[redacted]`` (longest first, so a URL goes
    whole rather than leaving its host around a redacted path)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
