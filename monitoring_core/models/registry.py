"""The model registry: what Fairwatch knows about each monitored model.

Not one of the source schema's seven collections: the analysis needs, per model, its
risk level (which drives cadence), its positive class and protected attributes, and its
thresholds, and those belong to the model rather than to any one baseline.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from ..clock import now
from .common import Document, UtcDatetime
from .schedule import cron_trigger
from .thresholds import MonitoringConfig


class RegisteredModel(Document):
    model_id: str = Field(min_length=1)
    display_name: str | None = None
    description: str | None = None
    owner: str | None = None
    monitoring: MonitoringConfig
    created_at: UtcDatetime = Field(default_factory=now)
    updated_at: UtcDatetime | None = None
    # Policy 2.2: a CRITICAL fairness incident may freeze the model (serving routes its
    # predictions to manual review); only a compliance officer or admin lifts it.
    frozen: bool = False
    frozen_at: UtcDatetime | None = None
    frozen_reason: str | None = None
    frozen_by_incident: str | None = None

    # -- scheduling (monitoring_core.scheduler) ----------------------------------------------
    enabled: bool = Field(default=True, description="False: scheduled runs are skipped and recorded as such")
    schedule_cron: str | None = Field(
        default=None, description="extra analysis runs at these UTC times (crontab, weekdays named), each over "
                                  "the predictions since its previous slot; the policy's runs stay")

    @field_validator("schedule_cron")
    @classmethod
    def _valid_cron(cls, expression: str | None) -> str | None:
        if expression is not None:
            cron_trigger(expression)
        return expression
