"""Who hears about an alert, how and when (policy sections 2.1, 3.2 and 11).

======== =============================== ===============================================
severity now                             later
======== =============================== ===============================================
INFO     dashboard only                  —
WARNING  Slack                           the daily email digest: ML lead (and the
                                         compliance officer for a fairness metric)
CRITICAL Slack with ``<!channel>``;      CTO after 1 h unless acknowledged; for data or
         email to the compliance officer model metrics the executive after 4 h unless
         (fairness) or the ML lead;      resolved
         fairness: the executive too
======== =============================== ===============================================

The policy's table (3.2) names the executive "immediate" for a CRITICAL fairness breach and
"if unresolved in 4h" otherwise; "secondary if no response in 1h" is the CTO, so that
escalation is cancelled by an acknowledgement and the executive's only by a resolution.
Recipients come from the settings (``alert_recipients``, overridden per model by
``alert_models``); a role without an address is skipped with a warning naming the setting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from ..config import Settings
from ..models.alerts import Alert, AlertStatus, Channel
from ..models.common import Severity
from ..models.delivery import DeliveryKind
from ..models.incidents import is_fairness_metric

log = logging.getLogger(__name__)

SECONDARY_AFTER = timedelta(hours=1)
EXECUTIVE_AFTER = timedelta(hours=4)


@dataclass(frozen=True)
class Route:
    """One delivery to make for an alert (an email route names its recipient's role)."""

    channel: Channel
    kind: DeliveryKind = DeliveryKind.NOTIFY
    role: str | None = None
    recipient: str | None = None
    mention_channel: bool = False
    delay: timedelta = timedelta(0)
    cancel_when: AlertStatus | None = None
    reason: str | None = None


def routes_for(alert: Alert, settings: Settings) -> list[Route]:
    """The deliveries to make for ``alert`` (empty for INFO: the dashboard shows it)."""
    if alert.severity == Severity.INFO:
        return []
    contacts = settings.alert_contacts(alert.model_id)
    critical = alert.severity == Severity.CRITICAL
    routes = [Route(Channel.SLACK, mention_channel=critical)] if contacts.slack_webhook_url else []
    if not routes:
        # INFO, not WARNING: a store with no channels configured (dashboard only) is a choice,
        # and every alert of every run would repeat it.
        log.info("alert %s: no Slack webhook configured (slack_webhook_url), Slack skipped", alert.alert_id)
    fairness = is_fairness_metric(alert.metric_name)
    if critical:
        wanted = _critical_emails(fairness)
    else:
        wanted = [Route(Channel.EMAIL, DeliveryKind.DIGEST_ITEM, role)
                  for role in (("ml_lead", "compliance_officer") if fairness else ("ml_lead",))]
    for route in wanted:
        address = contacts.recipients.get(route.role)
        if address is None:
            log.info("alert %s: no address for %s (alert_recipients.%s), email skipped", alert.alert_id,
                        route.role, route.role)
            continue
        routes.append(replace(route, recipient=address))
    return routes


def _critical_emails(fairness: bool) -> list[Route]:
    primary = "compliance_officer" if fairness else "ml_lead"
    routes = [Route(Channel.EMAIL, role=primary),
              Route(Channel.EMAIL, DeliveryKind.ESCALATION, "cto", delay=SECONDARY_AFTER,
                    cancel_when=AlertStatus.ACKNOWLEDGED,
                    reason="escalation: the CRITICAL alert was not acknowledged within 1 hour (policy 3.2)")]
    if fairness:
        routes.append(Route(Channel.EMAIL, role="executive",
                            reason="a CRITICAL fairness breach is reported to the executive at once (policy 3.2)"))
    else:
        routes.append(Route(Channel.EMAIL, DeliveryKind.ESCALATION, "executive", delay=EXECUTIVE_AFTER,
                            cancel_when=AlertStatus.RESOLVED,
                            reason="escalation: the CRITICAL alert was not resolved within 4 hours (policy 3.2)"))
    return routes
