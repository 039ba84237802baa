"""One analysis run: read a window, load the baseline, compute, write the record, hand off.

:func:`run_analysis` is what the scheduler, the app's Analyze Now and ``python -m
monitoring_core analyze`` call. A run

1. checks the actor may trigger an analysis (the scheduler acts as
   :data:`~monitoring_core.models.common.SYSTEM`) and that the model is registered;
2. takes the model's analysis lease (:func:`monitoring_core.leases.analysis`), so one run
   per model is in progress at a time across threads, processes and hosts; a crashed
   holder's lease expires after ``leases.ANALYSIS_TTL``;
3. reads only the columns the metrics need, loads the active baseline and computes every
   metric (:func:`~monitoring_core.metrics.compute_metrics`);
4. writes one ``monitoring_records`` document, opens or updates the incidents of its
   WARNING/CRITICAL metrics, appends an ``analysis_run`` audit entry and raises the
   alerts of those metrics (deduplicated, suppressible; new ones queued for delivery in
   the outbox, see :mod:`monitoring_core.alerts`).

A run with no active baseline, no predictions in the window or fewer than the model's
``min_window_size`` writes a *skipped* record saying why (no exception, no incident).

All or nothing
--------------
The writes of step 4 go incidents (with their own audit entries and a model freeze where
configured), then the record, then the ``analysis_run`` entry, then the alerts and their
queued deliveries: the audit log is append-only, so the run's own entry comes after what
it describes, and a notification is queued only for a run that is stored.

- Embedded SQLite: all of it is one transaction (``store.transaction()``); a failure or a
  crash at any point leaves nothing of the run.
- MongoDB: multi-document transactions need a replica set and the driver does not use
  sessions, so each write is atomic on its own, and a run that fails takes back what it
  wrote: its record is deleted, an incident it opened is deleted, one it updated is
  restored as it was (the incidents a record touched are found by the record id they
  carry: ``incidents.linked_to``), a freeze it set is lifted, and an ``analysis_failed``
  entry names what was undone, since the entries of those incident changes stay in the
  append-only log. No ``analysis_run`` entry and no record exist for a failed run (the alerts
  raised before a failure in the alert step itself stay). Only a
  process killed between two writes can leave incident changes that carry the id of a
  record that was never written; the next run of the model updates those incidents.
"""

from __future__ import annotations

import contextlib
import enum
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import audit, auth, clock, leases
from .alerts.manager import raise_for_record
from .config import get_settings
from .errors import FairwatchError, InvalidInput, NotFound
from .incidents import apply_record
from .metrics import ANALYZER_VERSION, compute_metrics, required_columns
from .models import columns as col
from .models.audit import AuditEvent
from .models.baseline import DriftSnapshot
from .models.common import Actor, Severity, to_utc_ms
from .models.incidents import Incident, IncidentStatus
from .models.record import AnalysisPeriod, MonitoringRecord, Reason, RunStatus, unjudged_metrics
from .models.registry import RegisteredModel
from .storage.driver import Cond, Driver

Progress = Callable[[float, str], None]
# Where each phase starts on the progress scale (read, compute, write).
_READ, _COMPUTE, _WRITE = 0.0, 0.3, 0.9
_DURATION = re.compile(r"(\d+)\s*([hd])")
_UNITS = {"h": "hours", "d": "days"}


class Trigger(enum.StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    CLI = "cli"


@dataclass(frozen=True)
class Window:
    """A half-open UTC range ``[start, end)`` of prediction timestamps.

    Naive datetimes are taken as UTC; both ends are kept to the millisecond, as stored.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise InvalidInput(f"the window's {name} must be a datetime, got {value!r}")
            object.__setattr__(self, name, to_utc_ms(value))
        if self.start >= self.end:
            raise InvalidInput(f"the window starts at {self.start:%Y-%m-%d %H:%M:%S} UTC, not before its end "
                               f"{self.end:%Y-%m-%d %H:%M:%S} UTC")

    @classmethod
    def last(cls, duration: timedelta, *, end: datetime | None = None) -> Window:
        """The ``duration`` up to ``end`` (default now)."""
        end = end or clock.now()
        return cls(end - duration, end)

    @classmethod
    def parse(cls, text: str, *, now: datetime | None = None) -> Window:
        """A window from the CLI's spelling.

        ``24h``, ``7d``, ``30d`` (any count of hours or days): that long up to ``now``;
        ``START..END`` (ISO dates or datetimes, UTC unless an offset is given): that range;
        ``START..``: from START up to ``now``.
        """
        now = now or clock.now()
        text = text.strip()
        duration = _DURATION.fullmatch(text)
        if duration:
            return cls.last(timedelta(**{_UNITS[duration[2]]: int(duration[1])}), end=now)
        start, separator, end = text.partition("..")
        if not separator:
            raise InvalidInput(f"window {text!r}: expected 24h, 7d, 30d (any hours or days) or START..END")
        return cls(_instant(start, "start", text), _instant(end, "end", text) if end.strip() else now)

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}..{self.end:%Y-%m-%d %H:%M} UTC"


def _instant(value: str, which: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"window {text!r}: the {which} {value.strip()!r} is not an ISO date or datetime "
                           "(e.g. 2026-11-01 or 2026-11-01T06:00)") from None


def run_analysis(store, model_id: str, window: Window, *, trigger: Trigger | str, actor: Actor,
                 baseline_id: str | None = None, progress: Progress | None = None) -> MonitoringRecord:
    """Analyse ``model_id``'s predictions in ``window`` and store the outcome.

    Parameters
    ----------
    store : Store
        The open store.
    model_id : str
        A registered model.
    window : Window
        The half-open UTC range of prediction timestamps to analyse; it must have ended.
    trigger : {'scheduled', 'manual', 'cli'}
        What started the run (recorded in the audit entry).
    actor : Actor
        Who started it; needs the ``trigger_analysis`` permission. The scheduler passes
        :data:`~monitoring_core.models.common.SYSTEM`.
    baseline_id : str, optional
        Compare with this snapshot of the model instead of its active baseline.
    progress : callable, optional
        ``progress(fraction, message)``, called as the phases read, compute and write
        advance (``message`` starts with the phase's name).

    Returns
    -------
    MonitoringRecord
        The stored record: ``status`` completed, or skipped with its ``reason``;
        ``incident_ids`` the incidents it opened or updated.

    Raises
    ------
    Forbidden
        The actor may not trigger an analysis.
    NotFound
        The model is not registered, or ``baseline_id`` does not exist.
    InvalidInput
        An unknown trigger, a window that has not ended, a baseline of another model.
    Conflict
        An analysis of the model is in progress (the message names who started it, when).
    """
    auth.require(actor, auth.Permission.TRIGGER_ANALYSIS)
    trigger = _trigger(trigger)
    model = store.models.get(model_id)
    _check_has_ended(window, clock.now())
    report = progress or (lambda fraction, message: None)
    with leases.analysis(store, model_id, started_by=actor.user_id, note=f"{trigger} analysis of {window}") as lease:
        started = time.perf_counter()
        baseline = _baseline(store, model_id, baseline_id)
        report(_READ, "read")
        record = _analyse(store, model, window, baseline, report)
        record = record.model_copy(update={"execution_time_ms": (time.perf_counter() - started) * 1000.0})
        report(_WRITE, "write")
        lease.check()  # a run whose lease was taken over must not write over the new holder's
        record = _commit(store, record, model, actor, trigger)
        report(1.0, f"write: done, {record.status}")
    return record


def _trigger(trigger: Trigger | str) -> Trigger:
    try:
        return Trigger(trigger)
    except ValueError:
        raise InvalidInput(f"unknown trigger {trigger!r}; expected one of {', '.join(Trigger)}") from None


def _check_has_ended(window: Window, now: datetime) -> None:
    # A record of a period still running would be overtaken by the predictions yet to come.
    if window.end > now:
        raise InvalidInput(f"the window {window} ends in the future (now is {now:%Y-%m-%d %H:%M:%S} UTC); "
                           "analyse a period that has ended")


def _baseline(store, model_id: str, baseline_id: str | None) -> DriftSnapshot | None:
    if baseline_id is None:
        return store.baselines.active(model_id)
    baseline = store.baselines.find(baseline_id)
    if baseline is None:
        raise NotFound(f"no baseline {baseline_id!r}")
    if baseline.model_id != model_id:
        raise InvalidInput(f"baseline {baseline_id!r} belongs to model {baseline.model_id!r}, not to {model_id!r}")
    return baseline


def columns_to_read(store, model_id: str, baseline: DriftSnapshot, model: RegisteredModel) -> list[str]:
    """The window columns a run reads: what the metrics read, plus the probability columns of classes the baseline lacks
    (their scores count in the output entropy)."""
    logged = store.predictions.columns(model_id)
    extra = [c for c in logged if c.startswith(col.PROBABILITY_PREFIX)]
    return list(dict.fromkeys(required_columns(baseline, model.monitoring) + extra))


def _analyse(store, model: RegisteredModel, window: Window, baseline: DriftSnapshot | None,
             report: Progress) -> MonitoringRecord:
    config = model.monitoring
    count = store.predictions.count(model.model_id, window.start, window.end)
    skip = _skip_reason(model.model_id, window, baseline, count, config.min_window_size)
    if skip is not None:
        return _skipped(model.model_id, window, baseline, count, *skip)
    frame = store.predictions.window(model.model_id, window.start, window.end,
                                     columns_to_read(store, model.model_id, baseline, model))
    report(_COMPUTE, f"compute: {len(frame):,} predictions")
    return compute_metrics(frame, baseline, config, period_start=window.start, period_end=window.end,
                           model_id=model.model_id)


def _skip_reason(model_id: str, window: Window, baseline: DriftSnapshot | None, count: int,
                 minimum: int) -> tuple[Reason, str] | None:
    if baseline is None:
        return Reason.NO_BASELINE_DATA, (f"model {model_id!r} has no active baseline; create one "
                                         "(baseline create) before analysing")
    if count == 0:
        return Reason.INSUFFICIENT_DATA, f"no predictions of {model_id!r} in {window}"
    if count < minimum:
        return Reason.INSUFFICIENT_DATA, (f"{count} predictions of {model_id!r} in {window}, fewer than the "
                                          f"model's minimum window size of {minimum}")
    return None


def _skipped(model_id: str, window: Window, baseline: DriftSnapshot | None, count: int, reason: Reason,
             detail: str) -> MonitoringRecord:
    return MonitoringRecord(
        model_id=model_id, analysis_period=AnalysisPeriod(start=window.start, end=window.end), sample_count=count,
        baseline_snapshot_id=baseline.snapshot_id if baseline else None, metrics=unjudged_metrics(reason, detail),
        aggregated_score=0.0, max_severity=Severity.INFO, analyzer_version=ANALYZER_VERSION,
        status=RunStatus.SKIPPED, reason=detail)


# -- writing: all or nothing ---------------------------------------------------------------

def _commit(store, record: MonitoringRecord, model: RegisteredModel, actor: Actor,
            trigger: Trigger) -> MonitoringRecord:
    with _undone_on_failure(store, record, model, actor), store.transaction():
        if record.status is RunStatus.COMPLETED:
            record = record.model_copy(update={
                "incident_ids": apply_record(store, record, actor=actor, now=record.timestamp)})
        store.records.insert(record)
        audit.record(store, AuditEvent.ANALYSIS_RUN, actor,
                     target={"model_id": record.model_id, "record_id": record.record_id},
                     details=_outcome(record, trigger))
        if record.status is RunStatus.COMPLETED:
            raise_for_record(store, record, settings=get_settings())
    return record


def _outcome(record: MonitoringRecord, trigger: Trigger) -> dict:
    return {"trigger": trigger.value, "status": record.status.value, "reason": record.reason,
            "analysis_period": {"start": record.analysis_period.start.isoformat(),
                                "end": record.analysis_period.end.isoformat()},
            "sample_count": record.sample_count, "baseline_snapshot_id": record.baseline_snapshot_id,
            "max_severity": record.max_severity.value, "aggregated_score": record.aggregated_score,
            "incident_ids": record.incident_ids, "analyzer_version": record.analyzer_version,
            "execution_time_ms": round(record.execution_time_ms or 0.0, 1)}


def _has_transactions(store) -> bool:
    # A driver whose atomic() is the base no-op writes each document on its own (MongoDB).
    return type(store.driver).atomic is not Driver.atomic


@contextlib.contextmanager
def _undone_on_failure(store, record: MonitoringRecord, model: RegisteredModel, actor: Actor) -> Iterator[None]:
    """On a store without transactions, take back what a failed run wrote (see the module
    docstring); if that fails too, the first failure is raised with a note saying so."""
    if _has_transactions(store):
        yield
        return
    routable = [IncidentStatus.OPEN, IncidentStatus.INVESTIGATING, IncidentStatus.ACCEPTED_RISK]
    before = {i.incident_id: i for i in store.incidents.list(record.model_id, statuses=routable)}
    try:
        yield
    except BaseException as failure:
        try:
            _undo(store, record, model, before, actor, failure)
        except FairwatchError as also:
            failure.add_note(f"Undoing the run's writes failed as well ({also}): incidents linked to record "
                             f"{record.record_id} may show a run that has no record; the next run updates them.")
        raise


def _undo(store, record: MonitoringRecord, model: RegisteredModel, before: dict[str, Incident], actor: Actor,
          failure: BaseException) -> None:
    store.driver.delete(store.records.collection, [Cond("record_id", "==", record.record_id)])
    deleted, restored = [], []
    for incident in store.incidents.linked_to(record.model_id, record.record_id):
        if incident.incident_id in before:
            store.incidents.update(incident.incident_id, before[incident.incident_id].model_dump())
            restored.append(incident.incident_id)
        else:
            store.driver.delete(store.incidents.collection, [Cond("incident_id", "==", incident.incident_id)])
            deleted.append(incident.incident_id)
    unfrozen = store.models.get(model.model_id).frozen != model.frozen
    if unfrozen:
        store.models.update(model.model_id, model.model_dump())
    if deleted or restored or unfrozen:
        # Their audit entries stay (the log is append-only); this one says they were undone.
        audit.record(store, AuditEvent.ANALYSIS_FAILED, actor,
                     target={"model_id": record.model_id, "record_id": record.record_id},
                     details={"error": f"{type(failure).__name__}: {failure}", "incidents_deleted": deleted,
                              "incidents_restored": restored, "freeze_undone": unfrozen})
