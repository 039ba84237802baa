"""The scheduler: fire times per risk level and check type, one run per slot across
schedulers, execution history, Analyze Now, shutdown, the Streamlit sidecar.

No sleeps: fire times come from the triggers, job bodies run directly under a frozen
clock, and runs on a real BackgroundScheduler are awaited on events with timeouts.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES

from monitoring_core import clock
from monitoring_core import scheduler as sched
from monitoring_core.analysis import Window
from monitoring_core.errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import SYSTEM, Actor, Severity
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.schedule import ExecutionStatus
from monitoring_core.models.thresholds import MonitoringConfig

from .factories import make_record, make_snapshot

# Monday 2026-11-23, 10:00 UTC.
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ENGINEER = Actor(user_id="alice", role="ml_engineer")
WAIT = 20  # seconds an event may take before the test fails (never reached when it works)

# Policy 1.1, written out here rather than read from the code under test.
POLICY = {
    "high": {"data": "daily", "fairness": "daily", "model": "daily", "explanation": "weekly"},
    "medium": {"data": "weekly", "fairness": "daily", "model": "weekly", "explanation": "biweekly"},
    # The table says weekly fairness for low risk; its note says at least daily, always.
    "low": {"data": "biweekly", "fairness": "daily", "model": "biweekly", "explanation": "monthly"},
}


def model(model_id: str = "loan", risk: str = "high", **fields) -> RegisteredModel:
    return RegisteredModel(model_id=model_id, monitoring=MonitoringConfig(risk_level=risk, positive_label="approve"),
                           **fields)


class FakeRunner:
    """Stands in for run_analysis: records its calls; can block until released, or raise."""

    def __init__(self, severity: Severity = Severity.INFO, block: bool = False, errors: dict | None = None):
        self.calls: list[tuple[str, Window, str]] = []
        self.severity, self.errors = severity, errors or {}
        self.started, self.release = threading.Event(), threading.Event()
        if not block:
            self.release.set()
        self._lock = threading.Lock()

    def __call__(self, store, model_id, window, *, trigger, actor, progress=None):
        with self._lock:
            self.calls.append((model_id, window, str(trigger)))
        self.started.set()
        if progress:
            progress(0.5, "compute: half way")
        assert self.release.wait(WAIT), "the test never released the runner"
        if model_id in self.errors:
            raise self.errors[model_id]
        record = make_record(model_id, window.end)
        if self.severity is Severity.INFO:
            record = record.model_copy(update={"max_severity": Severity.INFO, "aggregated_score": 0.01})
        return record


def job(scheduler: sched.DriftScheduler, job_id: str) -> sched.JobSpec:
    return next(spec for spec in scheduler.jobs() if spec.job_id == job_id)


def fire_times(trigger, start: datetime, count: int) -> list[datetime]:
    times, previous = [], None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, previous or start)
        times.append(previous)
    return times


@pytest.fixture
def scheduler_for(store):
    made = []

    def build(*models: RegisteredModel, runner=None, **options) -> sched.DriftScheduler:
        for registered in models:
            store.models.upsert(registered)
        scheduler = sched.DriftScheduler(store, runner=runner or FakeRunner(), **options)
        scheduler.refresh()
        made.append(scheduler)
        return scheduler

    yield build
    for scheduler in made:
        scheduler.stop()


# -- fire times ------------------------------------------------------------------------------


@pytest.mark.parametrize("risk", ["high", "medium", "low"])
def test_each_check_type_runs_at_its_policy_cadence_and_time(risk):
    jobs = sched.model_jobs(model(risk=risk))
    for family, cadence in POLICY[risk].items():
        carrying = [spec for spec in jobs if family in spec.checks]
        assert len(carrying) == 1, f"{family} should be in exactly one job, got {carrying}"
        times = fire_times(carrying[0].trigger, MONDAY, 4)
        gaps = {b - a for a, b in zip(times, times[1:])}
        if cadence == "daily":
            assert gaps == {timedelta(days=1)} and {(t.hour, t.minute) for t in times} == {(2, 0)}
        elif cadence == "weekly":
            assert gaps == {timedelta(days=7)} and {(t.strftime("%a"), t.hour, t.minute) for t in times} == {
                ("Sun", 3, 0)}
        elif cadence == "biweekly":
            assert gaps == {timedelta(days=14)} and {(t.strftime("%a"), t.hour) for t in times} == {("Sun", 3)}
        else:
            assert {(t.day, t.hour) for t in times} == {(1, 4)} and len({t.month for t in times}) == 4
        assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times)


@pytest.mark.parametrize("risk", ["high", "medium", "low"])
def test_every_model_has_the_daily_run_and_the_weekly_deep_run(risk):
    triggers = {spec.job_id.rsplit(":", 1)[1]: spec.trigger for spec in sched.model_jobs(model(risk=risk))}
    assert fire_times(triggers["daily"], MONDAY, 1) == [datetime(2026, 11, 24, 2, tzinfo=UTC)]
    assert fire_times(triggers["weekly"], MONDAY, 1) == [datetime(2026, 11, 29, 3, tzinfo=UTC)]


def test_global_jobs_review_monthly_and_purge_daily():
    jobs = {spec.job_id: spec for spec in sched.plan([])}
    assert fire_times(jobs["baseline-review"].trigger, MONDAY, 2) == [datetime(2026, 12, 1, 4, tzinfo=UTC),
                                                                      datetime(2027, 1, 1, 4, tzinfo=UTC)]
    assert fire_times(jobs["retention-purge"].trigger, MONDAY, 2) == [datetime(2026, 11, 24, 1, 30, tzinfo=UTC),
                                                                      datetime(2026, 11, 25, 1, 30, tzinfo=UTC)]


def test_jobs_are_utc_coalesced_single_instance_with_a_misfire_grace(scheduler_for):
    scheduler = scheduler_for(model())
    scheduler.start()
    jobs = scheduler._scheduler.get_jobs()
    assert jobs and all(j.coalesce and j.max_instances == 1 and j.misfire_grace_time == 3600 for j in jobs)
    assert str(scheduler._scheduler.timezone) == "UTC"


# -- windows and custom cron -----------------------------------------------------------------


def test_daily_run_analyses_the_last_24_hours_and_weekly_the_last_7_days(scheduler_for):
    runner = FakeRunner()
    scheduler = scheduler_for(model(), runner=runner)
    sunday_late = datetime(2026, 11, 29, 3, 20, tzinfo=UTC)  # within the misfire grace of both
    with clock.frozen(sunday_late):
        scheduler._fire("analysis:loan:daily")
        scheduler._fire("analysis:loan:weekly")
    (_, daily, trigger), (_, weekly, _) = runner.calls
    assert (daily.start, daily.end) == (datetime(2026, 11, 28, 2, tzinfo=UTC), datetime(2026, 11, 29, 2, tzinfo=UTC))
    assert (weekly.start, weekly.end) == (datetime(2026, 11, 22, 3, tzinfo=UTC), datetime(2026, 11, 29, 3, tzinfo=UTC))
    assert trigger == "scheduled"


def test_a_custom_cron_adds_runs_over_the_time_since_its_previous_slot(scheduler_for):
    runner = FakeRunner()
    scheduler = scheduler_for(model(schedule_cron="0 */6 * * mon-fri"), runner=runner)
    custom = job(scheduler, "analysis:loan:custom")
    assert fire_times(custom.trigger, MONDAY, 2) == [datetime(2026, 11, 23, 12, tzinfo=UTC),
                                                     datetime(2026, 11, 23, 18, tzinfo=UTC)]
    assert {"analysis:loan:daily", "analysis:loan:weekly"} <= {s.job_id for s in scheduler.jobs()}
    with clock.frozen(MONDAY):
        scheduler._fire(custom.job_id)
    window = runner.calls[0][1]
    assert (window.start, window.end) == (datetime(2026, 11, 23, 0, tzinfo=UTC), datetime(2026, 11, 23, 6, tzinfo=UTC))


@pytest.mark.parametrize("cron, says", [("0 25 * * *", "not valid"), ("0 3 * * 0", "name the weekdays"),
                                         ("every day", "expected 5")])
def test_an_invalid_cron_is_refused_at_registration(store, cron, says):
    with pytest.raises(InvalidInput, match=says):
        store.models.upsert({"model_id": "loan", "monitoring": {"positive_label": "approve"}, "schedule_cron": cron})
    assert store.models.find("loan") is None


# -- the registry drives the jobs --------------------------------------------------------------


def test_refresh_follows_registering_changing_and_disabling_models(store, scheduler_for):
    scheduler = scheduler_for()
    assert not [s for s in scheduler.jobs() if s.model_id]
    store.models.upsert(model(risk="high"))
    scheduler.refresh()
    assert {s.job_id for s in scheduler.jobs() if s.model_id} == {"analysis:loan:daily", "analysis:loan:weekly"}
    store.models.upsert(model(risk="low"))
    scheduler.refresh()
    assert {s.job_id for s in scheduler.jobs() if s.model_id} == {
        "analysis:loan:daily", "analysis:loan:weekly", "analysis:loan:biweekly", "analysis:loan:monthly"}
    scheduler.start()
    assert "analysis:loan:monthly" in {j.id for j in scheduler._scheduler.get_jobs()}
    store.models.upsert(model(risk="high", enabled=False))
    scheduler.refresh()
    assert "analysis:loan:monthly" not in {j.id for j in scheduler._scheduler.get_jobs()}
    shown = {j.job_id: j for j in scheduler.get_schedule()}
    assert shown["analysis:loan:daily"].model_enabled is False


def test_a_disabled_model_is_skipped_and_recorded(scheduler_for):
    runner = FakeRunner()
    scheduler = scheduler_for(model(enabled=False), runner=runner)
    with clock.frozen(MONDAY):
        execution = scheduler.run_slot(job(scheduler, "analysis:loan:daily"), datetime(2026, 11, 23, 2, tzinfo=UTC))
    assert not runner.calls
    assert execution.status is ExecutionStatus.SKIPPED and "disabled" in execution.summary
    assert scheduler.get_execution_history(status="SKIPPED")[0].check_id == execution.check_id


def test_a_model_removed_from_the_registry_is_skipped(store, scheduler_for):
    scheduler = scheduler_for(model())
    spec = job(scheduler, "analysis:loan:daily")
    store.driver.delete(store.models.collection, [])
    with clock.frozen(MONDAY):
        execution = scheduler.run_slot(spec, datetime(2026, 11, 23, 2, tzinfo=UTC))
    assert execution.status is ExecutionStatus.SKIPPED and "no longer registered" in execution.summary


# -- one run per slot ------------------------------------------------------------------------


def test_two_schedulers_sharing_one_database_run_a_slot_once(store_factory):
    first, second = store_factory(), store_factory()
    first.models.upsert(model())
    runner = FakeRunner(block=True)
    schedulers = [sched.DriftScheduler(s, runner=runner) for s in (first, second)]
    for scheduler in schedulers:
        scheduler.refresh()
    slot = datetime(2026, 11, 23, 2, tzinfo=UTC)
    results = []
    with clock.frozen(MONDAY):
        threads = [threading.Thread(target=lambda s=s: results.append(s.run_slot(job(s, "analysis:loan:daily"), slot)))
                   for s in schedulers]
        for thread in threads:
            thread.start()
        assert runner.started.wait(WAIT)
        runner.release.set()
        for thread in threads:
            thread.join(WAIT)
    assert len(runner.calls) == 1
    assert sorted(r is None for r in results) == [False, True]
    stored = second.executions.list()
    assert [(e.check_id, e.status) for e in stored] == [("analysis:loan:daily@2026-11-23T02:00:00Z",
                                                        ExecutionStatus.COMPLETED)]


def test_a_long_job_is_not_started_again_while_it_runs(scheduler_for):
    runner = FakeRunner(block=True)
    scheduler = scheduler_for(model(), runner=runner)
    refused = threading.Event()
    scheduler._scheduler.add_listener(lambda event: refused.set(), EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    scheduler._scheduler.modify_job("analysis:loan:daily", next_run_time=datetime.now(UTC))
    assert runner.started.wait(WAIT)
    scheduler._scheduler.modify_job("analysis:loan:daily", next_run_time=datetime.now(UTC))
    assert refused.wait(WAIT)
    runner.release.set()
    scheduler.stop()
    assert len(runner.calls) == 1


# -- failures ------------------------------------------------------------------------------


def test_an_exception_in_one_job_does_not_affect_the_others(scheduler_for):
    runner = FakeRunner(errors={"broken": RuntimeError("division by zero in a metric")})
    scheduler = scheduler_for(model("broken"), model("loan"), runner=runner)
    done = threading.Event()
    finished = []

    def listener(event):
        finished.append(event.job_id)
        if {"analysis:broken:daily", "analysis:loan:daily"} <= set(finished):
            done.set()

    scheduler._scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    for job_id in ("analysis:broken:daily", "analysis:loan:daily"):
        scheduler._scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))
    assert done.wait(WAIT)
    assert scheduler.running
    outcomes = {e.model_id: e for e in scheduler.get_execution_history()}
    assert outcomes["broken"].status is ExecutionStatus.FAILED
    assert outcomes["broken"].error == "RuntimeError: division by zero in a metric"
    assert outcomes["loan"].status is ExecutionStatus.COMPLETED


def test_a_database_that_goes_away_during_a_run_is_a_recorded_failure(store, scheduler_for, monkeypatch):
    runner = FakeRunner(errors={"loan": StoreUnavailable("the database data/fairwatch.db is locked")})
    scheduler = scheduler_for(model(), runner=runner)
    spec = job(scheduler, "analysis:loan:daily")
    with clock.frozen(MONDAY):
        failed = scheduler.run_slot(spec, datetime(2026, 11, 23, 2, tzinfo=UTC))
    assert failed.status is ExecutionStatus.FAILED and "locked" in failed.error
    assert store.executions.get(failed.check_id).error == failed.error

    # Gone for the outcome too: kept in memory, shown, and written once the store is back.
    def unreachable(*args, **kwargs):
        raise StoreUnavailable("MongoDB is unreachable")

    monkeypatch.setattr(type(store.executions), "claim", unreachable)
    with clock.frozen(MONDAY):
        lost = scheduler.run_slot(job(scheduler, "analysis:loan:weekly"), datetime(2026, 11, 22, 3, tzinfo=UTC))
    assert lost.status is ExecutionStatus.FAILED and "unreachable" in lost.error
    assert scheduler.get_execution_history()[0].check_id == lost.check_id
    monkeypatch.undo()
    runner.errors.clear()
    with clock.frozen(MONDAY + timedelta(days=1)):
        scheduler.run_slot(spec, datetime(2026, 11, 24, 2, tzinfo=UTC))
    assert store.executions.get(lost.check_id).status is ExecutionStatus.FAILED
    assert len(scheduler.get_execution_history()) == 3


# -- Analyze Now ----------------------------------------------------------------------------


def test_analyze_now_runs_in_the_pool_reports_progress_and_is_audited(store, scheduler_for):
    runner = FakeRunner(severity=Severity.CRITICAL, block=True)
    scheduler = scheduler_for(model(), runner=runner)
    scheduler.start()
    window = Window(MONDAY - timedelta(days=1), MONDAY)
    handle = scheduler.analyze_now("loan", window, ENGINEER)
    assert runner.started.wait(WAIT)
    assert handle.state is ExecutionStatus.RUNNING and handle.progress == 0.5 and not handle.finished
    runner.release.set()
    assert handle.wait(WAIT)
    assert handle.state is ExecutionStatus.COMPLETED and handle.record_id and handle.progress == 1.0
    assert runner.calls == [("loan", window, "manual")]
    execution = store.executions.get(handle.run_id)
    assert execution.alert_generated and execution.alert_level is Severity.CRITICAL
    entries = store.audit.list(event_types=[AuditEvent.MANUAL_ANALYSIS_TRIGGERED])
    assert [(e.actor.user_id, e.target.model_id, e.details["run_id"]) for e in entries] == [
        ("alice", "loan", handle.run_id)]


def test_analyze_now_during_a_scheduled_run_of_the_same_model_is_refused(scheduler_for):
    runner = FakeRunner(block=True)
    scheduler = scheduler_for(model(), runner=runner)
    scheduler.start()
    spec = job(scheduler, "analysis:loan:daily")
    scheduled = threading.Thread(target=scheduler.run_slot, args=(spec, datetime(2026, 11, 23, 2, tzinfo=UTC)))
    scheduled.start()
    assert runner.started.wait(WAIT)
    with pytest.raises(Conflict, match="analysis of loan is in progress .*scheduled analysis:loan:daily"):
        scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)
    runner.release.set()
    scheduled.join(WAIT)
    handle = scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)
    assert handle.wait(WAIT) and handle.state is ExecutionStatus.COMPLETED


def test_a_second_analyze_now_of_a_model_in_progress_is_refused(scheduler_for):
    runner = FakeRunner(block=True)
    scheduler = scheduler_for(model(), model("other"), runner=runner)
    scheduler.start()
    window = Window(MONDAY - timedelta(days=1), MONDAY)
    first = scheduler.analyze_now("loan", window, ENGINEER)
    with pytest.raises(Conflict, match="Analyze Now by alice"):
        scheduler.analyze_now("loan", window, Actor(user_id="bob", role="admin"))
    other = scheduler.analyze_now("other", window, ENGINEER)  # another model is not held up
    runner.release.set()
    assert first.wait(WAIT) and other.wait(WAIT)


@pytest.mark.parametrize("role", ["viewer", "compliance_officer", "auditor"])
def test_analyze_now_needs_the_trigger_permission(store, scheduler_for, role):
    scheduler = scheduler_for(model())
    scheduler.start()
    with pytest.raises(Forbidden, match="may not trigger analysis"):
        scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), Actor(user_id="eve", role=role))
    assert not store.audit.list(event_types=[AuditEvent.MANUAL_ANALYSIS_TRIGGERED])
    with pytest.raises(NotFound, match="not registered"):
        scheduler.analyze_now("nope", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)


def test_analyze_now_with_the_real_analysis_records_its_skipped_run(store, scheduler_for):
    # No baseline: run_analysis writes a record saying so; the execution points to it.
    scheduler = scheduler_for(model(), runner=sched.analysis.run_analysis)
    scheduler.start()
    handle = scheduler.analyze_now("loan", Window.last(timedelta(hours=24)), ENGINEER)
    assert handle.wait(WAIT)
    assert handle.state is ExecutionStatus.SKIPPED and handle.record_id
    assert store.records.get(handle.record_id).reason in handle.message


# -- lifecycle, history, statistics ------------------------------------------------------------


def test_shutdown_leaves_no_thread_behind(scheduler_for):
    before = set(threading.enumerate())
    scheduler = scheduler_for(model())
    scheduler.start()
    handle = scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)
    assert handle.wait(WAIT)
    assert set(threading.enumerate()) - before  # the scheduler thread and a worker
    scheduler.stop()
    assert not scheduler.running
    assert set(threading.enumerate()) - before == set()


def test_history_filters_and_statistics(scheduler_for):
    runner = FakeRunner(severity=Severity.CRITICAL, errors={"broken": InvalidInput("bad window")})
    scheduler = scheduler_for(model(), model("broken"), model("off", enabled=False), runner=runner)
    with clock.frozen(MONDAY):
        for model_id in ("loan", "broken", "off"):
            scheduler.run_slot(job(scheduler, f"analysis:{model_id}:daily"), datetime(2026, 11, 23, 2, tzinfo=UTC))
    assert [e.model_id for e in scheduler.get_execution_history(model_id="loan")] == ["loan"]
    assert [e.model_id for e in scheduler.get_execution_history(status=ExecutionStatus.FAILED)] == ["broken"]
    assert len(scheduler.get_execution_history(limit=2)) == 2
    stats = scheduler.get_statistics()
    assert stats["total_models_configured"] == 3 and stats["total_models_enabled"] == 2
    assert (stats["completed_executions"], stats["failed_executions"], stats["skipped_executions"]) == (1, 1, 1)
    assert stats["success_rate"] == 50.0 and stats["alerts_generated"] == 1


def test_get_schedule_shows_next_runs_and_last_outcomes(scheduler_for):
    scheduler = scheduler_for(model())
    with clock.frozen(MONDAY):
        scheduler.run_slot(job(scheduler, "analysis:loan:daily"), datetime(2026, 11, 23, 2, tzinfo=UTC))
    shown = {j.job_id: j for j in scheduler.get_schedule(now=MONDAY)}
    assert shown["analysis:loan:daily"].next_run_time == datetime(2026, 11, 24, 2, tzinfo=UTC)
    assert shown["analysis:loan:daily"].last_status is ExecutionStatus.COMPLETED
    assert shown["analysis:loan:weekly"].last_status is None
    assert shown["baseline-review"].next_run_time == datetime(2026, 12, 1, 4, tzinfo=UTC)


def test_monthly_review_stores_each_baselines_age_and_drift_since_activation(store, scheduler_for):
    scheduler = scheduler_for(model(), model("fresh"))
    activated = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    baseline = store.baselines.insert(make_snapshot("loan", active=True, created_at=activated))
    for days_ago, severity in ((8, Severity.INFO), (3, Severity.CRITICAL)):
        at = activated + timedelta(days=10 - days_ago)
        record = make_record("loan", at).model_copy(update={"baseline_snapshot_id": baseline.snapshot_id,
                                                           "max_severity": severity})
        store.records.insert(record)
    review_at = activated + timedelta(days=10)
    execution = scheduler.run_slot(job(scheduler, "baseline-review"), review_at)
    assert execution.status is ExecutionStatus.COMPLETED
    review = store.baseline_reviews.get(f"review-{review_at:%Y-%m}")
    ages = {b.model_id: b for b in review.baselines}
    assert ages["loan"].age_days == 10.0 and ages["loan"].completed_runs == 2
    assert ages["loan"].worst_severity is Severity.CRITICAL and ages["loan"].runs_by_severity == {"INFO": 1,
                                                                                                  "CRITICAL": 1}
    assert ages["fresh"].snapshot_id is None and "no active baseline" in ages["fresh"].note


def test_retention_purge_job_purges_through_the_audit_module(store, scheduler_for, monkeypatch):
    calls = []
    monkeypatch.setattr(sched.audit, "purge_expired", lambda s, now, actor: calls.append((s, actor)) or {"x": 2})
    scheduler = scheduler_for()
    execution = scheduler.run_slot(job(scheduler, "retention-purge"), MONDAY)
    assert calls == [(store, SYSTEM)] and execution.summary == "x: 2"


def test_run_due_runs_what_is_due_once(scheduler_for):
    runner = FakeRunner()
    scheduler = scheduler_for(model(), runner=runner)
    with clock.frozen(datetime(2026, 11, 24, 2, 10, tzinfo=UTC)):
        first = scheduler.run_due()
        again = scheduler.run_due()
    # 02:10: the 02:00 analysis, the 01:30 purge, the 01:15 silence check and the alert
    # outbox (every minute) are within the grace; the weekly run and the 08:00 digest are not.
    assert sorted(e.job_id for e in first) == ["alerts-outbox", "analysis:loan:daily", "health-check",
                                               "retention-purge"]
    assert [e.job_id for e in again] == ["alerts-outbox"]  # draining is safe on every call: its claims send once
    assert len(runner.calls) == 1


# -- the sidecar and the standalone command ------------------------------------------------------

SIDECAR_SCRIPT = """
import streamlit as st
from monitoring_core.config import load_settings
from monitoring_core.scheduler_sidecar import sidecar
from monitoring_core.storage import open_store

settings = load_settings()
first = sidecar(lambda: open_store(settings), settings)
second = sidecar(lambda: open_store(settings), settings)
st.write(f"{id(first)} {id(second)} {first.running}")
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRWATCH_SEED_DEMO", "false")
    yield tmp_path
    from monitoring_core.scheduler_sidecar import sidecar

    sidecar.clear()
    sched.stop_process_scheduler()


def test_the_sidecar_starts_once_across_sessions_and_reruns(data_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    starts = []
    real_start = sched.DriftScheduler.start
    monkeypatch.setattr(sched.DriftScheduler, "start", lambda self: starts.append(self) or real_start(self))
    shown = []
    for _ in range(2):  # two sessions
        app = AppTest.from_string(SIDECAR_SCRIPT, default_timeout=60).run()
        app.run()  # a rerun
        assert not app.exception
        shown.append(app.markdown[0].value)
    assert len(starts) == 1
    first, second, running = shown[0].split()
    assert first == second and running == "True" and shown[0] == shown[1]


def test_the_sidecar_is_off_for_scheduled_jobs_but_keeps_analyze_now(data_dir, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SCHEDULER", "off")
    from monitoring_core.config import load_settings
    from monitoring_core.scheduler_sidecar import sidecar
    from monitoring_core.storage import open_store

    settings = load_settings()
    scheduler = sidecar(lambda: open_store(settings), settings)
    assert scheduler.running and scheduler.jobs() == []
    scheduler.store.models.upsert(model())
    handle = sched.analyze_now("loan", Window.last(timedelta(hours=1)), ENGINEER)
    assert handle.wait(WAIT) and handle.state is ExecutionStatus.SKIPPED  # no baseline: a skipped record


def test_one_scheduler_per_process_and_a_clean_exit(tmp_path):
    script = textwrap.dedent("""
        import threading
        from monitoring_core.config import load_settings
        from monitoring_core.scheduler import process_scheduler
        from monitoring_core.scheduler_sidecar import sidecar
        from monitoring_core.storage import open_store
        settings = load_settings()
        schedulers = {id(sidecar(lambda: open_store(settings), settings)) for _ in range(3)}
        schedulers.add(id(process_scheduler(lambda: open_store(settings), settings)))
        print(len(schedulers), sum(t.name == "APScheduler" for t in threading.enumerate()))
    """)
    env = {"FAIRWATCH_DATA_DIR": str(tmp_path), "FAIRWATCH_SEED_DEMO": "false",
           "FAIRWATCH_AUDIT_KEY": "test-audit-key-0123456789abcdef", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=sched.__file__.rsplit("/monitoring_core/", 1)[0])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_the_standalone_scheduler_stops_cleanly_on_sigterm(tmp_path):
    env = {"FAIRWATCH_DATA_DIR": str(tmp_path), "FAIRWATCH_SEED_DEMO": "false",
           "FAIRWATCH_AUDIT_KEY": "test-audit-key-0123456789abcdef", "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, "-m", "monitoring_core", "scheduler"], stderr=subprocess.PIPE,
                               text=True, env=env, cwd=sched.__file__.rsplit("/monitoring_core/", 1)[0])
    try:
        assert "scheduler running" in process.stderr.readline()
        process.terminate()
        assert process.wait(WAIT) == 0
        assert "scheduler stopped" in process.stderr.read()
    finally:
        process.kill()


def test_scheduler_status_lists_jobs_next_runs_and_last_outcomes(store, monkeypatch, capsys):
    from monitoring_core import cli

    store.models.upsert(model())
    monkeypatch.setattr(cli.common, "store", lambda: store)
    with clock.frozen(MONDAY):
        assert cli.main(["scheduler", "status"]) == 0
    out = capsys.readouterr().out
    assert "analysis:loan:daily: next 2026-11-24 02:00 UTC; last never run; checks data, fairness, model" in out
    assert "0 executions" in out


def test_analyze_now_is_refused_while_another_process_holds_the_models_analysis_lease(store, scheduler_for):
    from monitoring_core import leases

    scheduler = scheduler_for(model())
    scheduler.start()
    with leases.analysis(store, "loan", started_by="bob"):
        with pytest.raises(Conflict, match="an analysis of loan started by bob"):
            scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)
    handle = scheduler.analyze_now("loan", Window(MONDAY - timedelta(days=1), MONDAY), ENGINEER)
    assert handle.wait(WAIT) and handle.state is ExecutionStatus.COMPLETED


def test_the_silence_check_warns_of_models_without_an_analysis_for_12_hours(store, scheduler_for):
    with clock.frozen(MONDAY - timedelta(hours=13)):
        scheduler = scheduler_for(model("quiet"))
    with clock.frozen(MONDAY - timedelta(hours=1)):
        store.models.upsert(model("fresh"))
    with clock.frozen(MONDAY):
        execution = scheduler.run_slot(job(scheduler, "health-check"), MONDAY)
    assert execution.alert_generated and execution.alert_level is Severity.WARNING
    assert execution.summary.startswith("1 of 2 models silent: quiet")
