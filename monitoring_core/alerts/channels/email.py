"""Email through SMTP (STARTTLS and login when configured): a plain-text and an HTML part."""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ...config import Settings
from ...models.alerts import Alert
from . import DeliveryFailed, alert_link


@dataclass(frozen=True)
class Content:
    """An email's subject and its two bodies."""

    subject: str
    text: str
    html: str


def alert_content(alert: Alert, *, affected_groups: list[str], dashboard_url: str,
                  reason: str | None = None) -> Content:
    """Subject and bodies of the email for one alert (``reason`` says why it is sent again,
    for an escalation)."""
    link = alert_link(alert, dashboard_url)
    subject = (f"{'[Escalation] ' if reason else ''}[Fairwatch {alert.severity}] {alert.model_id}: "
               f"{alert.metric_name} = {alert.metric_value:.4g} (threshold {alert.threshold:.4g})")
    facts = [("Model", alert.model_id), ("Metric", alert.metric_name),
             ("Value", f"{alert.metric_value:.4g} (threshold: {alert.threshold:.4g})"),
             ("Severity", str(alert.severity)), ("Affected groups", ", ".join(affected_groups) or "none listed"),
             ("Incident", alert.incident_id), ("Alert", alert.alert_id),
             ("Detected", alert.created_at.strftime("%Y-%m-%d %H:%M UTC"))]
    if reason:
        facts.insert(0, ("Why you receive this", reason))
    text = "\n".join(f"{name}: {value}" for name, value in facts) + f"\n\nView the incident: {link}\n"
    rows = "".join(f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
                   for name, value in facts)
    body = f"<table>{rows}</table><p><a href=\"{html.escape(link)}\">View the incident</a></p>"
    return Content(subject, text, body)


def compose(content: Content, *, sender: str, recipient: str) -> EmailMessage:
    """A multipart/alternative message with a fresh ``Message-ID``."""
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = content.subject, sender, recipient
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(content.text)
    message.add_alternative(f"<html><body>{content.html}</body></html>", subtype="html")
    return message


def send(message: EmailMessage, settings: Settings) -> str:
    """Send through the configured SMTP server; returns the ``Message-ID``.

    Raises
    ------
    DeliveryFailed
        ``final`` when the server refuses the login, the recipient or the message with a
        permanent (5xx) reply, or no server is configured; retryable on a transient (4xx)
        reply, a timeout or a refused connection.
    """
    if not settings.smtp_host:
        raise DeliveryFailed("no SMTP server is configured (FAIRWATCH_SMTP_HOST)", final=True)
    server = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.alert_send_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, password)
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(f"SMTP server {server} refused the login of {settings.smtp_username!r} "
                             f"({_reply(exc)}); check smtp_username and smtp_password", final=True) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(f"SMTP server {server}: {exc} (check smtp_starttls)", final=True) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryFailed(f"SMTP server {server} refused the recipient(s) {sorted(exc.recipients)} "
                             f"(replies {codes})", final=all(code >= 500 for code in codes)) from None
    except smtplib.SMTPConnectError as exc:
        raise DeliveryFailed(f"cannot connect to SMTP server {server} ({_reply(exc)})") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP server {server} answered {_reply(exc)}", final=exc.smtp_code >= 500) from None
    except (smtplib.SMTPException, OSError) as exc:  # dropped connection, timeout, refused, TLS failure
        raise DeliveryFailed(f"cannot send through SMTP server {server}: {type(exc).__name__}: {exc}") from None
    return message["Message-ID"]


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}"
