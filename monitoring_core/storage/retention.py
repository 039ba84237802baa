"""The retention policy (policy section 7) as data both backends apply.

MongoDB enforces it with TTL indexes; the embedded store with :meth:`Store.purge_expired`,
which the scheduler runs daily. Incidents and baselines are kept forever, and so are
CRITICAL alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import Settings


@dataclass(frozen=True)
class RetentionPolicy:
    prediction_days: int = 90
    record_days: int = 5 * 365
    audit_days: int = 5 * 365
    alert_days: int = 365

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_prediction_days, settings.retention_record_days,
                   settings.retention_audit_days, settings.retention_alert_days)

    def seconds(self) -> dict[str, int]:
        """Seconds to keep, per collection (TTL ``expireAfterSeconds``)."""
        return {
            "prediction_logs": self.prediction_days * 86_400,
            "monitoring_records": self.record_days * 86_400,
            "monitoring_audit_logs": self.audit_days * 86_400,
            "alerts": self.alert_days * 86_400,
        }

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """Documents older than these instants are past retention."""
        return {name: now - timedelta(seconds=s) for name, s in self.seconds().items()}
