"""The scheduler: periodic analyses by risk level, Analyze Now off the page's thread, run history.

:class:`DriftScheduler` runs an APScheduler 3 ``BackgroundScheduler`` (UTC, coalescing,
``max_instances=1``, a misfire grace time of :data:`MISFIRE_GRACE`) over one store. Its jobs
come from the model registry (:func:`plan`):

- per model, one analysis job per cadence of policy 1.1, each listing the metric families
  (``checks``) it is due for: every model has the daily 02:00 UTC run and the weekly deep
  run on Sunday 03:00 UTC (policy 1.2); a family analysed bi-weekly adds a run every other
  Sunday at 03:30 UTC, one analysed monthly a run on the 1st at 04:30 UTC. Fairness is
  daily at every risk level. A model's ``schedule_cron`` adds runs at those times. Each run
  analyses the predictions since the job's previous slot (the daily run: the last 24 hours;
  the weekly one: 7 days), so consecutive runs tile time;
- the monthly baseline review (1st, 04:00 UTC), stored in ``baseline_reviews``;
- the daily retention purge (01:30 UTC), the hourly 12-hour silence check
  (:mod:`monitoring_core.health`) and the alert outbox and digest
  (:mod:`monitoring_core.alerts`), each when its module is there (:data:`HOOKS`);
- a registry refresh every minute, so registering, disabling or changing a model updates
  its jobs without a restart, in every process.

One run per slot across processes: a scheduled run first inserts its execution record,
whose id is ``<job id>@<slot>``; of several schedulers sharing the database (app replicas,
the standalone scheduler) the first insert wins and the others leave the slot alone. One
analysis per model at a time: in this process a scheduled run waits for a manual run of the
same model, and a manual run is refused while another runs; across processes the analysis
lease of :func:`monitoring_core.analysis.run_analysis` decides (the loser is recorded
SKIPPED). A failed run is recorded FAILED with its error and the other jobs go on.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_REMOVED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from . import analysis, audit, auth, clock, leases
from .alerts.manager import raise_for_silence
from .config import Settings, get_settings
from .errors import ConfigError, Conflict, FairwatchError, InvalidInput, StoreUnavailable
from .models.audit import AuditEvent
from .models.common import SYSTEM, Actor, Severity, new_id
from .models.record import MonitoringRecord, RunStatus
from .models.registry import RegisteredModel
from .models.schedule import BaselineAge, BaselineReview, ExecutionStatus, JobExecution, cron_trigger
from .models.thresholds import AnalysisCadence, Cadence

log = logging.getLogger(__name__)

#: A slot missed while no scheduler ran (restart, deploy) still runs this late, once.
MISFIRE_GRACE = timedelta(hours=1)
#: How long a scheduled analysis waits for a manual run of the same model in this process.
MODEL_WAIT = leases.ANALYSIS_TTL
RUNNER = f"{socket.gethostname()}:{os.getpid()}"
FAMILIES = tuple(AnalysisCadence.model_fields)
# Bi-weekly runs fall on every other Sunday counted from this one.
BIWEEKLY_ANCHOR = datetime(2026, 1, 4, 3, 30, tzinfo=UTC)
# On the minute, not every 60 s from when this process started: a slot must name the same
# instant in every process (runs are claimed per slot) and under a frozen clock in the past.
EVERY_MINUTE = CronTrigger(minute="*", timezone=UTC)

#: Policy 1.1/1.2: when each cadence's analysis runs (UTC).
CADENCE_TRIGGERS: dict[Cadence, BaseTrigger] = {
    Cadence.DAILY: CronTrigger(hour=2, minute=0, timezone=UTC),
    Cadence.WEEKLY: CronTrigger(day_of_week="sun", hour=3, minute=0, timezone=UTC),
    Cadence.BIWEEKLY: IntervalTrigger(weeks=2, start_date=BIWEEKLY_ANCHOR, timezone=UTC),
    Cadence.MONTHLY: CronTrigger(day=1, hour=4, minute=30, timezone=UTC),
}

# Job kinds.
ANALYSIS, BASELINE_REVIEW, RETENTION_PURGE = "analysis", "baseline_review", "retention_purge"
HEALTH_CHECK, ALERT_OUTBOX, ALERT_DIGEST, REFRESH = "health_check", "alert_outbox", "alert_digest", "refresh"

#: Jobs of other modules, registered only when the module and function exist:
#: kind -> (job id, module, function, trigger).
HOOKS: dict[str, tuple[str, str, str, BaseTrigger]] = {
    HEALTH_CHECK: ("health-check", "monitoring_core.health", "report", CronTrigger(minute=15, timezone=UTC)),
    ALERT_OUTBOX: ("alerts-outbox", "monitoring_core.alerts", "drain", EVERY_MINUTE),
    ALERT_DIGEST: ("alerts-digest", "monitoring_core.alerts", "send_digest",
                   CronTrigger(hour=8, minute=0, timezone=UTC)),
}

#: ``runner(store, model_id, window, *, trigger, actor, progress)``: what an analysis job calls.
Runner = Callable[..., MonitoringRecord]


@dataclass(frozen=True)
class JobSpec:
    """One job: what it runs, when, for which model and metric families.

    ``exclusive`` jobs run once per slot across every scheduler sharing the database and
    always leave an execution record; the others (the outbox, the refresh) run in every
    process and are recorded only when they did something or failed.
    """

    job_id: str
    kind: str
    trigger: BaseTrigger
    model_id: str | None = None
    checks: tuple[str, ...] = ()
    exclusive: bool = True

    @property
    def signature(self) -> tuple:
        return self.kind, repr(self.trigger), self.model_id, self.checks, self.exclusive


@dataclass(frozen=True)
class ScheduledJob:
    """A job as :meth:`DriftScheduler.get_schedule` shows it."""

    job_id: str
    kind: str
    model_id: str | None
    checks: tuple[str, ...]
    trigger: str
    next_run_time: datetime | None
    model_enabled: bool | None
    last_status: ExecutionStatus | None
    last_run: datetime | None


@dataclass
class RunHandle:
    """An Analyze Now run handed to the worker pool. Poll ``state``, ``progress`` (0..1) and
    ``message``; when finished, ``record_id`` or ``error`` says how it went."""

    run_id: str
    model_id: str
    window: analysis.Window
    requested_by: str
    state: ExecutionStatus = ExecutionStatus.PENDING
    progress: float = 0.0
    message: str = "queued"
    record_id: str | None = None
    error: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished (or ``timeout`` seconds); True if it has."""
        return self._done.wait(timeout)

    def _report(self, fraction: float, message: str) -> None:
        self.progress, self.message = fraction, message


@dataclass(frozen=True)
class _Outcome:
    status: ExecutionStatus
    summary: str | None = None
    record_id: str | None = None
    alert_level: Severity | None = None


# -- the plan: jobs from the registry --------------------------------------------------------


def model_jobs(model: RegisteredModel) -> list[JobSpec]:
    """The analysis jobs of one model (see the module docstring)."""
    cadence = model.monitoring.cadence
    families: dict[Cadence, list[str]] = {Cadence.DAILY: [], Cadence.WEEKLY: []}  # policy 1.2: every model
    for family in FAMILIES:
        families.setdefault(getattr(cadence, family), []).append(family)
    jobs = [JobSpec(f"analysis:{model.model_id}:{every.value}", ANALYSIS, CADENCE_TRIGGERS[every], model.model_id,
                    tuple(checks)) for every, checks in families.items()]
    if model.schedule_cron:
        jobs.append(JobSpec(f"analysis:{model.model_id}:custom", ANALYSIS, cron_trigger(model.schedule_cron),
                            model.model_id, FAMILIES))
    return jobs


def hook(kind: str) -> Callable | None:
    """The function behind a hook job, or None while its module is not there."""
    _, module_name, function, _ = HOOKS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module is there but one of its imports is not: a bug to see
        return None
    return getattr(module, function, None)


def plan(models: list[RegisteredModel]) -> list[JobSpec]:
    """Every job for these registered models, plus the global ones."""
    jobs = [job for model in models for job in model_jobs(model)]
    jobs += [JobSpec("baseline-review", BASELINE_REVIEW, CronTrigger(day=1, hour=4, minute=0, timezone=UTC)),
             JobSpec("retention-purge", RETENTION_PURGE, CronTrigger(hour=1, minute=30, timezone=UTC)),
             JobSpec("registry-refresh", REFRESH, EVERY_MINUTE, exclusive=False)]
    jobs += [JobSpec(job_id, kind, trigger, exclusive=kind != ALERT_OUTBOX)
             for kind, (job_id, _, _, trigger) in HOOKS.items() if hook(kind) is not None]
    return jobs


def latest_fire(trigger: BaseTrigger, at: datetime) -> datetime:
    """The last fire time of ``trigger`` at or before ``at``."""
    lookback = timedelta(minutes=1)
    while (first := trigger.get_next_fire_time(None, at - lookback)) is None or first > at:
        lookback *= 2
        if lookback > timedelta(days=800):
            raise InvalidInput(f"the schedule {trigger} has no fire time in the two years before {at:%Y-%m-%d}")
    while (following := trigger.get_next_fire_time(first, first)) is not None and following <= at:
        first = following
    return first


def slot_window(trigger: BaseTrigger, slot: datetime) -> analysis.Window:
    """The predictions a run at ``slot`` analyses: since the trigger's previous slot."""
    return analysis.Window(latest_fire(trigger, slot - timedelta(microseconds=1)), slot)


# -- the monthly baseline review ---------------------------------------------------------------


def review_baselines(store, at: datetime) -> BaselineReview:
    """Store the baseline review of ``at``'s month: each model's active baseline, its age and
    the drift of the runs against it since it was activated (policy 1.2)."""
    review = BaselineReview(review_id=f"review-{at:%Y-%m}", created_at=at,
                            baselines=[_baseline_age(store, model.model_id, at) for model in store.models.list()])
    return store.baseline_reviews.insert(review)


def _baseline_age(store, model_id: str, at: datetime) -> BaselineAge:
    baseline = store.baselines.active(model_id)
    if baseline is None:
        return BaselineAge(model_id=model_id, note="no active baseline: nothing is compared")
    activated = _activated_at(store, model_id, baseline.snapshot_id) or baseline.created_at
    runs = [r for r in store.records.list(model_id, start=activated, end=at)
            if r.baseline_snapshot_id == baseline.snapshot_id]
    judged = [r for r in runs if r.status is RunStatus.COMPLETED]  # newest first
    return BaselineAge(
        model_id=model_id, snapshot_id=baseline.snapshot_id, activated_at=activated,
        age_days=round((at - activated) / timedelta(days=1), 2), runs_since_activation=len(runs),
        completed_runs=len(judged), worst_severity=Severity.worst(r.max_severity for r in judged) if judged else None,
        latest_score=judged[0].aggregated_score if judged else None,
        highest_score=max((r.aggregated_score for r in judged), default=None),
        runs_by_severity=dict(collections.Counter(r.max_severity.value for r in judged)),
        note=None if judged else "no completed run against this baseline yet")


def _activated_at(store, model_id: str, snapshot_id: str) -> datetime | None:
    """When the snapshot was last activated, from the audit log (retention may have removed it)."""
    entries = store.audit.list(event_types=[AuditEvent.BASELINE_ACTIVATED, AuditEvent.BASELINE_CREATED],
                               model_id=model_id)
    return next((e.timestamp for e in entries if e.target.snapshot_id == snapshot_id), None)


# -- one analysis at a time per model, in this process -----------------------------------------


class _ModelGate:
    """Which model an analysis runs for in this process, and who started it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holders: dict[str, str] = {}

    @contextlib.contextmanager
    def entered(self, model_id: str, who: str, wait: timedelta) -> Iterator[str | None]:
        """Yield None once this caller holds the model, else (after waiting up to ``wait``)
        the description of whoever does."""
        with self._changed:
            self._changed.wait_for(lambda: model_id not in self._holders, wait.total_seconds())
            holder = self._holders.get(model_id)
            if holder is None:
                self._holders[model_id] = who
        if holder is not None:
            yield holder
            return
        try:
            yield None
        finally:
            self.leave(model_id)

    def enter(self, model_id: str, who: str) -> str | None:
        """Hold the model (None) or say who holds it; the caller must :meth:`leave`."""
        with self._changed:
            holder = self._holders.get(model_id)
            if holder is None:
                self._holders[model_id] = who
            return holder

    def leave(self, model_id: str) -> None:
        with self._changed:
            self._holders.pop(model_id, None)
            self._changed.notify_all()


# -- the scheduler ---------------------------------------------------------------------------


class DriftScheduler:
    """The jobs of :func:`plan` on a ``BackgroundScheduler``, with Analyze Now and the history.

    Parameters
    ----------
    store : Store
        The open store (thread-safe; the jobs share it).
    workers : int
        Threads of the worker pool (scheduled jobs and Analyze Now).
    scheduled : bool
        False: no scheduled job, only the worker pool for Analyze Now (the app with
        ``FAIRWATCH_SCHEDULER=off``, when the standalone scheduler runs the jobs).
    runner : callable
        What an analysis job calls; :func:`monitoring_core.analysis.run_analysis` by default.
    """

    def __init__(self, store, *, workers: int = 4, scheduled: bool = True, runner: Runner | None = None):
        self.store = store
        self.scheduled = scheduled
        self.runner: Runner = runner or analysis.run_analysis
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": int(MISFIRE_GRACE.total_seconds())})
        self._specs: dict[str, JobSpec] = {}
        self._lock = threading.Lock()
        self._gate = _ModelGate()
        self._runs: dict[str, RunHandle] = {}
        # Outcomes the store refused (it was unreachable): written with the next one.
        self._unsaved: collections.deque[JobExecution] = collections.deque(maxlen=1000)
        self._save_lock = threading.Lock()
        # Analyze Now jobs APScheduler has not yet removed after handing them to the pool.
        self._handed_over: set[str] = set()
        self._removed = threading.Condition()
        self._scheduler.add_listener(self._job_removed, EVENT_JOB_REMOVED)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self) -> None:
        """Build the jobs from the registry and start the scheduler thread."""
        if self.scheduled:
            self.refresh()
        self._scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """Stop taking jobs; with ``wait``, let running ones finish and join every thread."""
        if not self._scheduler.running:
            return
        # APScheduler 3 removes a one-off job just after handing it to the pool; shut down
        # in between and its thread dies on a JobLookupError. Let it finish first.
        with self._removed:
            self._removed.wait_for(lambda: not self._handed_over, timeout=10)
        self._scheduler.shutdown(wait=wait)

    def _job_removed(self, event) -> None:
        self._forget(event.job_id)

    def _forget(self, job_id: str) -> None:
        with self._removed:
            self._handed_over.discard(job_id)
            self._removed.notify_all()

    def refresh(self) -> None:
        """Re-read the registry and add, change or remove jobs to match it. A store that
        cannot be read keeps the current jobs (logged)."""
        try:
            specs = {spec.job_id: spec for spec in plan(self.store.models.list())}
        except FairwatchError as exc:
            log.warning("scheduler: keeping the current jobs, the model registry cannot be read: %s", exc)
            return
        with self._lock:
            previous, self._specs = self._specs, specs
            for job_id in previous.keys() - specs.keys():
                self._scheduler.remove_job(job_id)
            for job_id, spec in specs.items():
                if job_id not in previous or previous[job_id].signature != spec.signature:
                    self._scheduler.add_job(self._fire, spec.trigger, args=(job_id,), id=job_id, name=job_id,
                                            replace_existing=True)

    def jobs(self) -> list[JobSpec]:
        with self._lock:
            return list(self._specs.values())

    # -- scheduled runs -----------------------------------------------------------------------

    def _fire(self, job_id: str) -> None:
        """What APScheduler calls: run the job's latest slot."""
        with self._lock:
            spec = self._specs.get(job_id)
        if spec is None:
            return  # removed by a refresh since it was due
        if spec.kind == REFRESH:
            self.refresh()
            return
        self.run_slot(spec, latest_fire(spec.trigger, clock.now()))

    def run_due(self, now: datetime | None = None) -> list[JobExecution]:
        """Run, once, every job whose latest slot is within the misfire grace time and that
        no scheduler has run yet (``scheduler --once``)."""
        now = now or clock.now()
        done = []
        for spec in self.jobs():
            if spec.kind == REFRESH:
                continue
            slot = latest_fire(spec.trigger, now)
            if now - slot <= MISFIRE_GRACE and (execution := self.run_slot(spec, slot)) is not None:
                done.append(execution)
        return done

    def run_slot(self, spec: JobSpec, slot: datetime) -> JobExecution | None:
        """Run ``spec`` for ``slot`` unless another scheduler has; the execution record, or
        None when the slot was someone else's (or a quiet job had nothing to do)."""
        execution = JobExecution(check_id=f"{spec.job_id}@{slot:%Y-%m-%dT%H:%M:%SZ}", job_id=spec.job_id,
                                 kind=spec.kind, model_id=spec.model_id, checks=list(spec.checks),
                                 trigger=analysis.Trigger.SCHEDULED.value, status=ExecutionStatus.RUNNING,
                                 slot=slot, started_at=clock.now(), requested_by=SYSTEM.user_id, runner=RUNNER)
        if spec.exclusive:
            try:
                if not self.store.executions.claim(execution):
                    return None
            except StoreUnavailable as exc:
                return self._finish(execution, time.perf_counter(), error=exc)
        body = {ANALYSIS: self._scheduled_analysis, BASELINE_REVIEW: self._review, RETENTION_PURGE: self._purge,
                HEALTH_CHECK: self._hook_job, ALERT_OUTBOX: self._hook_job, ALERT_DIGEST: self._hook_job}[spec.kind]
        return self._execute(execution, lambda: body(spec, slot), save=spec.exclusive)

    def _execute(self, execution: JobExecution, body: Callable[[], _Outcome], *, save: bool) -> JobExecution | None:
        """Run ``body`` and record how it went. Errors a user can act on are recorded; any
        other exception is recorded and re-raised, for APScheduler to log with its traceback."""
        started = time.perf_counter()
        try:
            outcome = body()
        except FairwatchError as exc:
            return self._finish(execution, started, error=exc)
        except Exception as exc:
            self._finish(execution, started, error=exc)
            raise
        if not save and outcome.summary is None:
            return None  # a quiet job that had nothing to do
        return self._finish(execution, started, outcome=outcome)

    def _finish(self, execution: JobExecution, started: float, *, outcome: _Outcome | None = None,
                error: BaseException | None = None) -> JobExecution:
        changes = {"duration_ms": (time.perf_counter() - started) * 1000.0}
        if error is not None:
            level = logging.ERROR if not isinstance(error, FairwatchError) else logging.WARNING
            log.log(level, "scheduler: %s failed: %s", execution.check_id, error)
            changes |= {"status": ExecutionStatus.FAILED, "error": _describe(error)}
        else:
            changes |= {"status": outcome.status, "summary": outcome.summary, "record_id": outcome.record_id,
                        "alert_level": outcome.alert_level,
                        "alert_generated": outcome.alert_level in (Severity.WARNING, Severity.CRITICAL)}
            if outcome.status is ExecutionStatus.SKIPPED:
                log.info("scheduler: %s skipped: %s", execution.check_id, outcome.summary)
        finished = execution.model_copy(update=changes)
        self._save(finished)
        return finished

    def _save(self, execution: JobExecution) -> None:
        """Write the outcome (and any the store refused before); keep it in memory while the
        store is unreachable."""
        with self._save_lock:
            self._unsaved.append(execution)
            while self._unsaved:
                pending = self._unsaved[0]
                try:
                    if not self.store.executions.claim(pending):
                        self.store.executions.update(pending.check_id, pending.model_dump(exclude={"check_id"}))
                except StoreUnavailable as exc:
                    log.error("scheduler: cannot store the outcome of %s, kept in memory: %s", pending.check_id, exc)
                    return
                self._unsaved.popleft()

    # -- job bodies -----------------------------------------------------------------------

    def _scheduled_analysis(self, spec: JobSpec, slot: datetime) -> _Outcome:
        model = self.store.models.find(spec.model_id)
        if model is None:
            return _Outcome(ExecutionStatus.SKIPPED, f"model {spec.model_id!r} is no longer registered")
        if not model.enabled:
            return _Outcome(ExecutionStatus.SKIPPED, f"model {spec.model_id!r} is disabled")
        who = f"the scheduled {spec.job_id} run of {slot:%Y-%m-%d %H:%M} UTC"
        with self._gate.entered(spec.model_id, who, MODEL_WAIT) as holder:
            if holder is not None:
                return _Outcome(ExecutionStatus.SKIPPED, f"an analysis of {spec.model_id} is in progress ({holder})")
            return self._analyse(spec.model_id, slot_window(spec.trigger, slot), analysis.Trigger.SCHEDULED,
                                 SYSTEM, None)

    def _analyse(self, model_id: str, window: analysis.Window, trigger: analysis.Trigger, actor: Actor,
                 progress: Callable[[float, str], None] | None) -> _Outcome:
        try:
            record = self.runner(self.store, model_id, window, trigger=trigger, actor=actor, progress=progress)
        except Conflict as exc:  # the model's analysis lease is held (by another process)
            return _Outcome(ExecutionStatus.SKIPPED, str(exc))
        if record.status is RunStatus.SKIPPED:
            return _Outcome(ExecutionStatus.SKIPPED, f"record {record.record_id}: {record.reason}", record.record_id)
        incidents = f", incidents {', '.join(record.incident_ids)}" if record.incident_ids else ""
        return _Outcome(ExecutionStatus.COMPLETED,
                        f"record {record.record_id}: {record.max_severity}, score {record.aggregated_score:.3f}, "
                        f"{record.sample_count:,} predictions{incidents}", record.record_id, record.max_severity)

    def _review(self, spec: JobSpec, slot: datetime) -> _Outcome:
        review = review_baselines(self.store, slot)
        aged = [b for b in review.baselines if b.worst_severity in (Severity.WARNING, Severity.CRITICAL)]
        return _Outcome(ExecutionStatus.COMPLETED, f"{review.review_id}: {len(review.baselines)} models, "
                                                   f"{len(aged)} with drift since their baseline was activated")

    def _purge(self, spec: JobSpec, slot: datetime) -> _Outcome:
        removed = audit.purge_expired(self.store, clock.now(), SYSTEM)
        return _Outcome(ExecutionStatus.COMPLETED, ", ".join(f"{name}: {count}" for name, count in removed.items()))

    def _hook_job(self, spec: JobSpec, slot: datetime) -> _Outcome:
        function = hook(spec.kind)
        if spec.kind == ALERT_DIGEST:
            result = function(self.store, (slot - timedelta(days=1)).date())
        elif spec.kind == HEALTH_CHECK:
            report = function(self.store, now=clock.now())
            raise_for_silence(self.store, report, settings=get_settings())
            return _silence(report)
        else:
            result = function(self.store)
        return _Outcome(ExecutionStatus.COMPLETED, str(result).splitlines()[0] if result else None)

    # -- Analyze Now ------------------------------------------------------------------------

    def analyze_now(self, model_id: str, window: analysis.Window, actor: Actor) -> RunHandle:
        """Hand an analysis of ``model_id`` over ``window`` to the worker pool; return at once.

        Raises
        ------
        Forbidden
            The actor's role may not trigger an analysis (policy 6).
        NotFound
            The model is not registered.
        Conflict
            An analysis of the model is in progress in this process (the message says
            which). One running in another process is caught by the analysis lease: the
            handle then ends SKIPPED with that message.
        """
        auth.require(actor, auth.Permission.TRIGGER_ANALYSIS)
        self.store.models.get(model_id)
        if not self._scheduler.running:
            raise ConfigError("the scheduler's worker pool is not running in this process; start it, or use "
                              "`python -m monitoring_core analyze`")
        handle = RunHandle(new_id("RUN"), model_id, window, actor.user_id)
        holder = self._gate.enter(model_id, f"Analyze Now by {actor.user_id} at {clock.now():%H:%M} UTC")
        if holder is not None:
            raise Conflict(f"an analysis of {model_id} is in progress ({holder}); wait for it to finish")
        elsewhere = self.store.leases.holder(leases.analysis_key(model_id), clock.now())
        if elsewhere is not None:  # another process: the lease would refuse the run anyway
            self._gate.leave(model_id)
            raise Conflict(f"{leases.analysis_in_progress(elsewhere)}; wait for it to finish")
        try:
            audit.record(self.store, AuditEvent.MANUAL_ANALYSIS_TRIGGERED, actor, target={"model_id": model_id},
                         details={"run_id": handle.run_id, "window_start": window.start.isoformat(),
                                  "window_end": window.end.isoformat()})
            execution = JobExecution(check_id=handle.run_id, job_id=f"analysis:{model_id}:manual", kind=ANALYSIS,
                                     model_id=model_id, checks=list(FAMILIES),
                                     trigger=analysis.Trigger.MANUAL.value, status=ExecutionStatus.PENDING,
                                     window_start=window.start, window_end=window.end,
                                     requested_by=actor.user_id, runner=RUNNER)
            self.store.executions.insert(execution)
            with self._removed:
                self._handed_over.add(handle.run_id)
            self._scheduler.add_job(self._run_manual, args=(handle, execution, actor), id=handle.run_id,
                                    name=f"Analyze Now {model_id}", misfire_grace_time=None)
        except BaseException:
            self._gate.leave(model_id)
            self._forget(handle.run_id)
            raise
        with self._lock:
            self._runs[handle.run_id] = handle
        return handle

    def get_run(self, run_id: str) -> RunHandle | None:
        """An Analyze Now handle of this process."""
        with self._lock:
            return self._runs.get(run_id)

    def _run_manual(self, handle: RunHandle, execution: JobExecution, actor: Actor) -> None:
        handle.state, handle.message = ExecutionStatus.RUNNING, "starting"
        execution = execution.model_copy(update={"status": ExecutionStatus.RUNNING, "started_at": clock.now()})
        try:
            finished = self._execute(execution, lambda: self._analyse(handle.model_id, handle.window,
                                                                      analysis.Trigger.MANUAL, actor,
                                                                      handle._report), save=True)
            handle.state, handle.record_id, handle.error = finished.status, finished.record_id, finished.error
            handle.message = finished.error or finished.summary or finished.status.value
            handle.progress = 1.0
        except BaseException as exc:  # a bug: the handle says so, and APScheduler logs the traceback
            handle.state, handle.error, handle.message = ExecutionStatus.FAILED, _describe(exc), _describe(exc)
            raise
        finally:
            self._gate.leave(handle.model_id)
            handle._done.set()

    # -- schedule, history, statistics --------------------------------------------------------

    def get_schedule(self, now: datetime | None = None) -> list[ScheduledJob]:
        """Every job with its next run time (UTC) and last outcome."""
        now = now or clock.now()
        enabled = {m.model_id: m.enabled for m in self.store.models.list()}
        shown = []
        for spec in sorted(self.jobs(), key=lambda s: s.job_id):
            last = self.store.executions.list(job_id=spec.job_id, limit=1)
            shown.append(ScheduledJob(
                spec.job_id, spec.kind, spec.model_id, spec.checks, str(spec.trigger),
                spec.trigger.get_next_fire_time(None, now), enabled.get(spec.model_id) if spec.model_id else None,
                last[0].status if last else None, (last[0].started_at or last[0].queued_at) if last else None))
        return shown

    def get_execution_history(self, model_id: str | None = None, status: ExecutionStatus | str | None = None,
                              limit: int = 50) -> list[JobExecution]:
        """Executions, newest first (outcomes not yet stored first of all)."""
        statuses = [ExecutionStatus(status)] if status is not None else None
        with self._save_lock:
            kept = list(self._unsaved)
        unsaved = [e for e in reversed(kept)
                   if (model_id is None or e.model_id == model_id) and (statuses is None or e.status in statuses)]
        return (unsaved + self.store.executions.list(model_id=model_id, statuses=statuses, limit=limit))[:limit]

    def get_statistics(self, since: datetime | None = None) -> dict:
        """Counts of executions (since ``since``, default all) and the success rate: the
        percentage of finished runs that did not fail (skipped runs left out)."""
        executions = self.store.executions.list(since=since)
        by_status = collections.Counter(e.status for e in executions)
        models = self.store.models.list()
        ran = by_status[ExecutionStatus.COMPLETED] + by_status[ExecutionStatus.FAILED]
        durations = [e.duration_ms for e in executions if e.duration_ms is not None]
        return {
            "total_models_configured": len(models),
            "total_models_enabled": sum(m.enabled for m in models),
            "total_jobs": len(self.jobs()),
            "total_executions": len(executions),
            **{f"{s.value.lower()}_executions": by_status[s] for s in ExecutionStatus},
            "alerts_generated": sum(e.alert_generated for e in executions),
            "success_rate": round(100.0 * by_status[ExecutionStatus.COMPLETED] / ran, 1) if ran else None,
            "mean_duration_ms": round(sum(durations) / len(durations), 1) if durations else None,
        }


def _silence(health) -> _Outcome:
    """The 12-hour silence check's outcome: a WARNING naming each silent model."""
    silent = health.stale_models
    if not silent:
        return _Outcome(ExecutionStatus.COMPLETED, f"all {len(health.models)} models analysed within "
                                                   f"{health.stale_after}")
    return _Outcome(ExecutionStatus.COMPLETED, f"{len(silent)} of {len(health.models)} models silent: "
                    + "; ".join(f"{m.model_id} ({m.reason})" for m in silent), alert_level=Severity.WARNING)


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, FairwatchError) else f"{type(error).__name__}: {error}"


# -- the one scheduler of a process (the app's sidecar) ------------------------------------------

_process_lock = threading.Lock()
_process_scheduler: DriftScheduler | None = None


def process_scheduler(store_factory: Callable[[], object], settings: Settings) -> DriftScheduler:
    """This process's scheduler, started on the first call and stopped at exit.

    With ``FAIRWATCH_SCHEDULER=off`` it runs no scheduled job, only the worker pool of
    Analyze Now.
    """
    global _process_scheduler
    with _process_lock:
        if _process_scheduler is None or not _process_scheduler.running:
            scheduler = DriftScheduler(store_factory(), workers=settings.scheduler_workers,
                                       scheduled=settings.scheduler == "on")
            scheduler.start()
            atexit.register(scheduler.stop)
            _process_scheduler = scheduler
        return _process_scheduler


def stop_process_scheduler(*_: object) -> None:
    """Stop this process's scheduler (the next :func:`process_scheduler` starts a new one)."""
    global _process_scheduler
    with _process_lock:
        scheduler, _process_scheduler = _process_scheduler, None
    if scheduler is not None:
        scheduler.stop()


def analyze_now(model_id: str, window: analysis.Window, actor: Actor) -> RunHandle:
    """Analyze Now on this process's scheduler (see :meth:`DriftScheduler.analyze_now`)."""
    with _process_lock:
        scheduler = _process_scheduler
    if scheduler is None:
        raise ConfigError("no scheduler runs in this process (the app starts one with "
                          "monitoring_core.scheduler_sidecar.sidecar); use `python -m monitoring_core analyze`")
    return scheduler.analyze_now(model_id, window, actor)
