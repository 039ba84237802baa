"""The scheduler's documents: one execution record per job run, the monthly baseline review.

Not among the source schema's seven collections: audit file 003 asks for an execution
history (check id, model, trigger, status, duration, alert raised, error) and policy 1.2
for a stored monthly report of each baseline's age and drift since activation.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field

from ..clock import now
from .common import Document, Part, Severity, UtcDatetime


class ExecutionStatus(enum.StrEnum):
    PENDING = "PENDING"  # handed to the worker pool, not started (Analyze Now)
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # not run: model disabled or gone, an analysis of it in progress

    @property
    def finished(self) -> bool:
        return self in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.SKIPPED)


class JobExecution(Document):
    """One run of a scheduled job or of Analyze Now.

    A scheduled run's ``check_id`` is ``<job id>@<slot>`` (the fire time it stands for), so
    the first scheduler to insert it runs the slot and every other scheduler sharing the
    database sees the duplicate id and leaves it alone.
    """

    check_id: str = Field(min_length=1)
    job_id: str = Field(min_length=1)
    kind: str = Field(min_length=1, description="analysis, baseline_review, retention_purge, health_check...")
    model_id: str | None = None
    checks: list[str] = Field(default_factory=list, description="metric families the run is due for")
    trigger: str = Field(description="scheduled or manual")
    status: ExecutionStatus
    slot: UtcDatetime | None = Field(default=None, description="the fire time a scheduled run stands for")
    window_start: UtcDatetime | None = None
    window_end: UtcDatetime | None = None
    queued_at: UtcDatetime = Field(default_factory=now)
    started_at: UtcDatetime | None = None
    duration_ms: float | None = Field(default=None, ge=0)
    record_id: str | None = None
    alert_generated: bool = False
    alert_level: Severity | None = None
    summary: str | None = Field(default=None, description="what the run did, one line")
    error: str | None = None
    requested_by: str = Field(min_length=1, description="user id, 'system' for scheduled runs")
    runner: str = Field(min_length=1, description="host:pid of the process that ran it")


class BaselineAge(Part):
    """One model's active baseline as the monthly review found it."""

    model_id: str
    snapshot_id: str | None = None
    activated_at: UtcDatetime | None = None
    age_days: float | None = None
    runs_since_activation: int = 0
    completed_runs: int = 0
    worst_severity: Severity | None = None
    latest_score: float | None = None
    highest_score: float | None = None
    runs_by_severity: dict[str, int] = Field(default_factory=dict)
    note: str | None = None


class BaselineReview(Document):
    """``baseline_reviews``: the monthly baseline review (policy 1.2), one per month."""

    review_id: str = Field(min_length=1, description="'review-YYYY-MM'")
    created_at: UtcDatetime = Field(default_factory=now)
    baselines: list[BaselineAge] = Field(default_factory=list)


_DIGIT = re.compile(r"\d")


def cron_trigger(expression: str) -> CronTrigger:
    """A UTC trigger from a five-field crontab expression (minute hour day month day-of-week).

    Raises
    ------
    ValueError
        The expression is malformed, or numbers its weekdays: standard cron counts 0 as
        Sunday and APScheduler 3 as Monday, so weekdays must be named (``mon-fri``, ``sun``).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expression!r} has {len(fields)} fields; expected 5: "
                         "minute hour day-of-month month day-of-week, e.g. '30 6 * * mon-fri'")
    if _DIGIT.search(fields[4].split("/")[0]):
        raise ValueError(f"cron expression {expression!r}: name the weekdays ('sun', 'mon-fri') instead of "
                         f"numbering them ({fields[4]!r}); cron and APScheduler number them differently")
    try:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"cron expression {expression!r} is not valid: {exc}") from None
