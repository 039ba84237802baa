"""Meta-monitoring (policy section 8): is the monitoring itself still running?

A model whose analyses stopped (a dead scheduler, a store that refuses writes, a lease
that is never released) shows no drift and no incident, which looks exactly like a healthy
model. :func:`report` tells them apart: per registered model, the last analysis, its worst
severity and its age; a model is **stale** when it has had no analysis for
:data:`STALE_AFTER` (a model never analysed counts from its registration).
``python -m monitoring_core health`` prints :func:`format_report` and exits non-zero
when any model is stale, so it serves as a container or cron probe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, computed_field

from . import clock, leases
from .models.common import Severity
from .models.record import RunStatus
from .models.registry import RegisteredModel

#: Issue 12 / policy 8: no analysis for this long means monitoring has stopped.
STALE_AFTER = timedelta(hours=12)


class ModelHealth(BaseModel):
    """One model's monitoring state. In JSON, durations are seconds."""

    model_config = ConfigDict(frozen=True, ser_json_timedelta="float")

    model_id: str
    display_name: str | None = None
    registered_at: datetime
    last_record_id: str | None = None
    last_analysis_at: datetime | None = None
    max_severity: Severity | None = None
    #: Since the last analysis, or since registration for a model never analysed.
    age: timedelta
    stale: bool
    reason: str
    #: Who is analysing the model right now, if anyone (see :mod:`monitoring_core.leases`).
    analysis_in_progress: str | None = None


class HealthReport(BaseModel):
    """Every registered model's :class:`ModelHealth` at ``generated_at``."""

    model_config = ConfigDict(frozen=True, ser_json_timedelta="float")

    generated_at: datetime
    stale_after: timedelta
    models: list[ModelHealth]

    @computed_field
    @property
    def healthy(self) -> bool:
        """No model is stale (an empty registry is healthy: nothing should be running)."""
        return not self.stale_models

    @property
    def stale_models(self) -> list[ModelHealth]:
        return [model for model in self.models if model.stale]


def report(store, now: datetime | None = None, *, stale_after: timedelta = STALE_AFTER) -> HealthReport:
    """The monitoring state of every registered model.

    Parameters
    ----------
    store : Store
    now : datetime, optional
        The moment judged; ``clock.now()`` by default.
    stale_after : timedelta
        How long without an analysis makes a model stale.

    Returns
    -------
    HealthReport
        ``healthy`` is False when any model is stale.
    """
    now = now or clock.now()
    return HealthReport(generated_at=now, stale_after=stale_after,
                        models=[_model_health(store, model, now, stale_after) for model in store.models.list()
                                if model.enabled])


def _model_health(store, model: RegisteredModel, now: datetime, stale_after: timedelta) -> ModelHealth:
    # A skipped run (no baseline, too few predictions) judged nothing: it does not count.
    record = store.records.latest(model.model_id, status=RunStatus.COMPLETED)
    running = store.leases.holder(leases.analysis_key(model.model_id), now)
    since = model.created_at if record is None else record.timestamp
    age = now - since
    stale = age >= stale_after
    return ModelHealth(
        model_id=model.model_id, display_name=model.display_name, registered_at=model.created_at,
        last_record_id=None if record is None else record.record_id,
        last_analysis_at=None if record is None else record.timestamp,
        max_severity=None if record is None else record.max_severity,
        age=age, stale=stale, reason=_reason(record is not None, age, stale, stale_after),
        analysis_in_progress=None if running is None else leases.analysis_in_progress(running))


def _reason(analysed: bool, age: timedelta, stale: bool, stale_after: timedelta) -> str:
    if not analysed:
        verdict = f"stale: more than {duration(stale_after)}" if stale else "not yet stale"
        return f"never analysed, registered {duration(age)} ago ({verdict})"
    if stale:
        return f"stale: no analysis for {duration(age)} (limit {duration(stale_after)})"
    return f"last analysed {duration(age)} ago"


def duration(delta: timedelta) -> str:
    """``45 min``, ``13.0 h``, ``3.5 d``: short enough for a table column."""
    minutes = delta.total_seconds() / 60
    if abs(minutes) < 60:
        return f"{minutes:.0f} min"
    if abs(minutes) < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def format_report(health: HealthReport) -> str:
    """The report as a table for a terminal, stale models first."""
    stale = len(health.stale_models)
    title = (f"Monitoring health at {health.generated_at:%Y-%m-%d %H:%M} UTC: "
             + (f"{stale} of {len(health.models)} model(s) STALE" if stale else "every model analysed")
             + f" (stale after {duration(health.stale_after)} without an analysis)")
    if not health.models:
        return f"{title}\nno models are registered"
    rows = [("MODEL", "STATE", "LAST ANALYSIS", "SEVERITY", "DETAIL")]
    for model in sorted(health.models, key=lambda m: (not m.stale, m.model_id)):
        detail = model.reason + (f"; {model.analysis_in_progress}" if model.analysis_in_progress else "")
        rows.append((model.model_id, "STALE" if model.stale else "ok",
                     "never" if model.last_analysis_at is None else f"{model.last_analysis_at:%Y-%m-%d %H:%M} UTC",
                     model.max_severity or "-", detail))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    return "\n".join([title, *lines])
