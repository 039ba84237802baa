"""One analysis run (monitoring_core.analysis): the record, the audit entry, skipped runs,
all or nothing under injected failures, the lease, bad input and the ``analyze`` command."""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from monitoring_core import analysis, audit, baselines, clock, config, leases
from monitoring_core.analysis import Trigger, Window, run_analysis
from monitoring_core.errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable
from monitoring_core.models import columns as col
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import SYSTEM, Actor
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig
from tests.factories import NOW, prediction_frame

MODEL = "loan"
ALICE = Actor(user_id="alice", role="ml_engineer")
WINDOW = Window(NOW - timedelta(days=2), NOW + timedelta(minutes=1))
CONFIG = MonitoringConfig(positive_label="approve", class_labels=["approve", "reject"],
                          protected_attributes=["gender"], bootstrap_resamples=20)

# Every field of schema file 000's monitoring_records, by dotted path.
SCHEMA_FIELDS = [
    "record_id", "model_id", "analysis_period.start", "analysis_period.end", "timestamp", "sample_count",
    "baseline_snapshot_id", "metrics.data_drift.psi", "metrics.data_drift.kl_divergence",
    "metrics.data_drift.wasserstein_distance", "metrics.data_drift.category_frequency_shift",
    "metrics.data_drift.missing_value_density_change", "metrics.fairness_drift.demographic_parity",
    "metrics.fairness_drift.equal_opportunity", "metrics.fairness_drift.disparate_impact",
    "metrics.model_drift.prediction_distribution_shift", "metrics.model_drift.accuracy_drop",
    "metrics.model_drift.output_entropy_change", "metrics.model_drift.prediction_volatility",
    "metrics.explanation_drift.shap_kl_divergence", "metrics.explanation_drift.top_features_change",
    "metrics.explanation_drift.rank_correlation", "metrics.data_quality.schema_violations",
    "metrics.data_quality.type_mismatches", "metrics.data_quality.range_violations", "aggregated_score",
    "max_severity", "incident_ids", "analyzer_version", "execution_time_ms",
]


def register(store, model_id: str = MODEL, *, baseline: bool = True) -> None:
    store.models.upsert(RegisteredModel(model_id=model_id, monitoring=CONFIG))
    if baseline:
        reference = prediction_frame(1000, model_id=model_id, seed=1)
        baselines.create_baseline(store, reference, model_id=model_id, model_version="2.3.0", config=CONFIG,
                                  actor=SYSTEM)


def log(store, rows: int = 600, *, model_id: str = MODEL, drift: bool = False, start_id: int = 10_000):
    frame = prediction_frame(rows, model_id=model_id, seed=2, start_id=start_id)
    if drift:  # incomes far above the baseline's: PSI, KL and Wasserstein go CRITICAL
        frame[col.feature("income")] += 20_000
    store.predictions.insert_frame(frame)
    return frame


def audit_entries(store, event: AuditEvent = AuditEvent.ANALYSIS_RUN):
    return store.audit.list(event_types=[event])


def value_at(doc, path: str):
    for part in path.split("."):
        assert part in doc, f"{path}: {part!r} missing"
        doc = doc[part]
    return doc


# -- a run -------------------------------------------------------------------------------------

def test_a_run_stores_one_record_with_every_schema_field_and_audits_it(store):
    register(store)
    log(store)
    record = run_analysis(store, MODEL, WINDOW, trigger=Trigger.MANUAL, actor=ALICE)

    stored = store.records.get(record.record_id)
    assert stored == record and store.records.list(MODEL) == [record]
    doc = stored.model_dump(mode="json")
    for path in SCHEMA_FIELDS:
        value_at(doc, path)
    assert record.status == "completed" and record.reason is None
    assert record.sample_count == 600 and record.baseline_snapshot_id == store.baselines.active(MODEL).snapshot_id
    assert (record.analysis_period.start, record.analysis_period.end) == (WINDOW.start, WINDOW.end)
    assert record.analyzer_version and record.execution_time_ms > 0
    assert set(record.category_scores) <= {"data", "fairness", "model", "explanation"} and record.category_scores

    [entry] = audit_entries(store)
    assert entry.actor.user_id == "alice" and entry.target.record_id == record.record_id
    assert entry.details["trigger"] == "manual" and entry.details["status"] == "completed"
    assert entry.details["max_severity"] == record.max_severity and entry.details["sample_count"] == 600
    assert audit.verify(store).valid


def test_a_run_reads_only_the_columns_the_metrics_need(store, monkeypatch):
    register(store)
    frame = prediction_frame(600, model_id=MODEL, seed=2, start_id=10_000)
    frame[col.USER_ID] = "someone"
    store.predictions.insert_frame(frame)
    read = []
    original = store.predictions.window
    monkeypatch.setattr(store.predictions, "window", lambda *a: read.append(a[3]) or original(*a))
    run_analysis(store, MODEL, WINDOW, trigger="cli", actor=ALICE)
    [columns] = read
    assert col.feature("income") in columns and col.protected("gender") in columns
    assert col.USER_ID not in columns and col.PREDICTION_ID not in columns and col.MODEL_VERSION not in columns


def test_a_breaching_run_opens_incidents_and_lists_them_in_the_record(store):
    register(store)
    log(store, drift=True)
    record = run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    assert record.max_severity == "CRITICAL" and record.incident_ids
    assert sorted(i.incident_id for i in store.incidents.list(MODEL)) == sorted(record.incident_ids)
    assert audit_entries(store)[0].details["incident_ids"] == record.incident_ids


def test_a_breaching_run_raises_alerts_queues_their_delivery_and_a_repeat_is_deduplicated(store, monkeypatch):
    monkeypatch.setenv("FAIRWATCH_SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T/B/x")
    config.get_settings.cache_clear()
    register(store)
    log(store, drift=True)
    record = run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    alerts = store.alerts.list(MODEL)
    breaches = {b.metric_name: b for b in record.breaches()}
    assert sorted(a.metric_name for a in alerts) == sorted(breaches)
    for alert in alerts:
        incident = store.incidents.get(alert.incident_id)
        assert alert.metric_name in incident.metric_names and alert.alert_id in incident.alert_ids
        assert alert.severity == breaches[alert.metric_name].severity
        assert [d.channel for d in store.deliveries.for_alert(alert.alert_id)].count("slack") == 1

    with clock.frozen(NOW + timedelta(hours=1)):
        run_analysis(store, MODEL, Window(WINDOW.start, WINDOW.end), trigger="manual", actor=ALICE)
    again = {a.alert_id: a for a in store.alerts.list(MODEL)}
    assert sorted(again) == sorted(a.alert_id for a in alerts)  # no second alert within 6 hours...
    assert all(a.deduplicated_count == 1 for a in again.values())  # ...the first counts the repeat
    config.get_settings.cache_clear()


def test_progress_reports_the_phases_in_order(store):
    register(store)
    log(store)
    seen = []
    run_analysis(store, MODEL, WINDOW, trigger="cli", actor=ALICE, progress=lambda f, m: seen.append((f, m)))
    assert [m.split(":")[0] for _, m in seen] == ["read", "compute", "write", "write"]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0


# -- runs that judge nothing -------------------------------------------------------------------

@pytest.mark.parametrize("case, rows, expected", [
    ("no baseline", 600, "has no active baseline"),
    ("empty window", 0, "no predictions of 'loan' in"),
    ("tiny window", 40, "40 predictions of 'loan' in"),
])
def test_a_run_that_cannot_judge_stores_a_skipped_record_saying_why(store, monkeypatch, case, rows, expected):
    register(store, baseline=case != "no baseline")
    if rows:
        log(store, rows)
    monkeypatch.setattr(analysis, "apply_record", lambda *a, **k: pytest.fail("no incidents for a skipped run"))
    record = run_analysis(store, MODEL, WINDOW, trigger="scheduled", actor=SYSTEM)
    assert record.status == "skipped" and expected in record.reason
    assert record.sample_count == rows and record.max_severity == "INFO" and record.incident_ids == []
    assert record.metrics.data_drift.kl_divergence.available is False
    assert store.records.get(record.record_id) == record and store.incidents.list(MODEL) == []
    [entry] = audit_entries(store)
    assert entry.details["status"] == "skipped" and expected in entry.details["reason"]


def test_labels_outside_the_models_classes_are_counted_not_a_crash(store):
    register(store)
    frame = prediction_frame(600, model_id=MODEL, seed=2, start_id=10_000)
    frame.loc[:99, col.PREDICTED_CLASS] = "maybe"
    frame.loc[100:149, col.GROUND_TRUTH] = "unknown"
    store.predictions.insert_frame(frame)
    record = run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    assert record.status == "completed" and record.metrics.data_quality.unknown_labels == 150
    assert store.records.get(record.record_id) == record


# -- bad input: a clear error, nothing written -------------------------------------------------

def nothing_written(store, tip_before):
    return store.records.list(MODEL) == [] and store.incidents.list() == [] and store.audit.tip() == tip_before


@pytest.mark.parametrize("call, error, message", [
    (lambda s: run_analysis(s, "nobody", WINDOW, trigger="manual", actor=ALICE), NotFound,
     "model 'nobody' is not registered"),
    (lambda s: run_analysis(s, MODEL, Window.last(timedelta(days=1), end=datetime.now(UTC) + timedelta(hours=2)),
                            trigger="manual", actor=ALICE), InvalidInput, "ends in the future"),
    (lambda s: run_analysis(s, MODEL, WINDOW, trigger="manual", actor=Actor(user_id="carol", role="viewer")),
     Forbidden, "carol (viewer) may not trigger analysis"),
    (lambda s: run_analysis(s, MODEL, WINDOW, trigger="weekly", actor=ALICE), InvalidInput, "unknown trigger 'weekly'"),
    (lambda s: run_analysis(s, MODEL, WINDOW, trigger="manual", actor=ALICE, baseline_id="SNAP-none"), NotFound,
     "no baseline 'SNAP-none'"),
])
def test_bad_input_is_refused_by_name_and_writes_nothing(store, call, error, message):
    register(store)
    log(store)
    tip = store.audit.tip()
    with pytest.raises(error, match=re.escape(message)):
        call(store)
    assert nothing_written(store, tip)


def test_a_baseline_of_another_model_is_refused_naming_both(store):
    register(store)
    register(store, "other")
    log(store)
    other = store.baselines.active("other").snapshot_id
    tip = store.audit.tip()
    with pytest.raises(InvalidInput, match=re.escape(f"baseline '{other}' belongs to model 'other', not to 'loan'")):
        run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE, baseline_id=other)
    assert nothing_written(store, tip)


@pytest.mark.parametrize("text, message", [
    ("2026-11-02..2026-11-01", "starts at 2026-11-02 00:00:00 UTC, not before its end 2026-11-01 00:00:00 UTC"),
    ("2026-11-01..2026-11-01", "not before its end"),
    ("yesterday", "expected 24h, 7d, 30d"),
    ("2026-13-01..2026-11-02", "the start '2026-13-01' is not an ISO date"),
    ("2026-11-01..soon", "the end 'soon' is not an ISO date"),
])
def test_a_malformed_window_is_refused_by_name(text, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        Window.parse(text)


def test_window_spellings():
    now = datetime(2026, 11, 23, 10, 2, tzinfo=UTC)
    assert Window.parse("24h", now=now) == Window(now - timedelta(hours=24), now)
    assert Window.parse("7d", now=now).start == now - timedelta(days=7)
    assert Window.parse("30d", now=now).start == now - timedelta(days=30)
    assert Window.parse("2026-11-01..2026-11-02T06:00", now=now) == Window(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC))
    assert Window.parse("2026-11-01T00:00+01:00..", now=now) == Window(datetime(2026, 10, 31, 23, tzinfo=UTC), now)


# -- all or nothing ----------------------------------------------------------------------------

def boom(*args, **kwargs):
    raise StoreUnavailable("injected failure")


def crash_after_incidents(store, monkeypatch):
    real = analysis.apply_record

    def apply_then_crash(*args, **kwargs):
        assert real(*args, **kwargs), "the run should have opened or updated an incident before crashing"
        boom()

    monkeypatch.setattr(analysis, "apply_record", apply_then_crash)


def crash_in_record_insert(store, monkeypatch):
    monkeypatch.setattr(store.records, "insert", boom)


def crash_in_analysis_run_entry(store, monkeypatch):
    real = store.audit.append
    monkeypatch.setattr(store.audit, "append", lambda entry, seal: boom() if entry.event_type == AuditEvent.ANALYSIS_RUN
                        else real(entry, seal))


@pytest.mark.parametrize("crash", [crash_after_incidents, crash_in_record_insert, crash_in_analysis_run_entry])
@pytest.mark.parametrize("first_run", [False, True], ids=["opening", "updating"])
def test_a_failure_at_any_write_leaves_nothing_half_written(store, backend, monkeypatch, crash, first_run):
    register(store)
    log(store, drift=True)
    if first_run:  # an earlier breaching run: the failing one updates its open incidents
        run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    records, incidents, tip = store.records.list(MODEL), store.incidents.list(MODEL), store.audit.tip()
    model = store.models.get(MODEL)
    crash(store, monkeypatch)
    with pytest.raises(StoreUnavailable, match="injected failure"):
        run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    assert store.records.list(MODEL) == records
    assert store.incidents.list(MODEL) == incidents and store.models.get(MODEL) == model
    added = [e for e in store.audit.list() if e.seq > tip.seq]
    if backend == "embedded":  # one transaction: not even the incidents' entries
        assert added == []
    else:  # the incidents' entries stay in the append-only log, followed by what was undone
        assert AuditEvent.ANALYSIS_RUN not in {e.event_type for e in added}
        failed, *changes = added  # newest first
        assert failed.event_type == AuditEvent.ANALYSIS_FAILED and "injected failure" in failed.details["error"]
        undone = {*failed.details["incidents_deleted"], *failed.details["incidents_restored"]}
        assert {e.target.incident_id for e in changes} == undone and undone
        assert {i.incident_id for i in incidents} >= set(failed.details["incidents_restored"])
    assert audit.verify(store).valid


def test_a_failed_runs_writes_are_taken_back_with_the_freeze_it_set(store, backend, monkeypatch):
    """A model that freezes on CRITICAL fairness: a run that fails after the freeze lifts it."""
    store.models.upsert(RegisteredModel(model_id=MODEL, monitoring=CONFIG.model_copy(
        update={"freeze_on_critical_fairness": True})))
    baselines.create_baseline(store, prediction_frame(1000, model_id=MODEL, seed=1), model_id=MODEL,
                              model_version="2.3.0", config=CONFIG, actor=SYSTEM)
    frame = prediction_frame(600, model_id=MODEL, seed=2, start_id=10_000)
    women = frame[col.protected("gender")] == "female"
    frame.loc[women, col.PREDICTED_CLASS] = "reject"  # no woman approved: CRITICAL demographic parity
    store.predictions.insert_frame(frame)
    crash_in_record_insert(store, monkeypatch)
    with pytest.raises(StoreUnavailable, match="injected failure"):
        run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    assert store.models.get(MODEL).frozen is False and store.incidents.list(MODEL) == []
    assert store.records.list(MODEL) == []


# -- one run per model at a time ----------------------------------------------------------------

def blocking_compute(monkeypatch, started, release):
    """compute_metrics that signals it has started (the lease is held) and waits to be let go."""
    real = analysis.compute_metrics

    def compute(*args, **kwargs):
        started.set()
        assert release.wait(60), "the test never let the run finish"
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "compute_metrics", compute)


def test_a_second_run_of_the_same_model_gets_conflict_naming_the_first(store, monkeypatch):
    register(store)
    register(store, "other")
    log(store)
    log(store, model_id="other")
    started, release = threading.Event(), threading.Event()
    blocking_compute(monkeypatch, started, release)
    at = NOW + timedelta(days=1, hours=10, minutes=2) - timedelta(hours=NOW.hour)
    outcome = {}
    with clock.frozen(at), ThreadPoolExecutor(1) as pool:
        first = pool.submit(run_analysis, store, MODEL, WINDOW, trigger="manual", actor=ALICE)
        assert started.wait(60)
        with pytest.raises(Conflict, match=re.escape("an analysis of loan started by alice at 10:02 UTC is in progress")):
            run_analysis(store, MODEL, WINDOW, trigger="scheduled", actor=SYSTEM)
        release.set()  # another model is not blocked; the first run then finishes
        outcome["other"] = run_analysis(store, "other", WINDOW, trigger="scheduled", actor=SYSTEM)
        outcome["first"] = first.result(60)
    assert outcome["first"].status == outcome["other"].status == "completed"
    assert [r.record_id for r in store.records.list(MODEL)] == [outcome["first"].record_id]
    assert run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE).status == "completed"  # released


def _run_in_child(path, started, release, done):
    """A second process: an analysis of MODEL that holds the lease until ``release``."""
    from monitoring_core.storage.sqlite import SqliteStore

    store = SqliteStore(path)
    real = analysis.compute_metrics

    def compute(*args, **kwargs):
        started.set()
        release.wait(60)
        return real(*args, **kwargs)

    analysis.compute_metrics = compute
    done.put(run_analysis(store, MODEL, WINDOW, trigger="cli", actor=ALICE).record_id)
    store.close()


def test_two_processes_one_run_at_a_time_on_the_embedded_store(tmp_path):
    from monitoring_core.storage.sqlite import SqliteStore

    path = tmp_path / "fairwatch.db"
    store = SqliteStore(path)
    store.ensure_schema()
    register(store)
    log(store)
    context = multiprocessing.get_context("spawn")
    started, release, done = context.Event(), context.Event(), context.Queue()
    child = context.Process(target=_run_in_child, args=(path, started, release, done))
    child.start()
    try:
        assert started.wait(120), "the child process never started its run"
        with pytest.raises(Conflict, match="an analysis of loan started by alice at .* UTC is in progress"):
            run_analysis(store, MODEL, WINDOW, trigger="manual", actor=ALICE)
    finally:
        release.set()
        record_id = done.get(timeout=120)
        child.join(60)
    assert child.exitcode == 0 and [r.record_id for r in store.records.list(MODEL)] == [record_id]
    store.close()


def test_the_expired_lease_of_a_dead_holder_lets_the_next_run_go(store):
    register(store)
    log(store)
    crashed = datetime.now(UTC)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # What a killed process leaves behind: its lease, never released or renewed.
    store.leases.acquire(leases.analysis_key(MODEL), "dead-owner", leases.ANALYSIS_TTL,
                         leases.LeaseHolder(started_by="bob", pid=dead.pid), crashed)
    with clock.frozen(crashed + timedelta(minutes=1)), pytest.raises(Conflict, match="started by bob"):
        run_analysis(store, MODEL, WINDOW, trigger="scheduled", actor=SYSTEM)
    assert store.records.list(MODEL) == []
    with clock.frozen(crashed + leases.ANALYSIS_TTL + timedelta(seconds=1)):
        record = run_analysis(store, MODEL, WINDOW, trigger="scheduled", actor=SYSTEM)
    assert record.status == "completed" and store.records.list(MODEL) == [record]


# -- the command line --------------------------------------------------------------------------

@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    from monitoring_core import config
    from monitoring_core.storage.sqlite import SqliteStore

    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("FAIRWATCH_BACKEND", raising=False)
    config.get_settings.cache_clear()
    store = SqliteStore(tmp_path / "data" / "fairwatch.db")
    store.ensure_schema()
    yield store
    store.close()
    config.get_settings.cache_clear()


def test_analyze_prints_json_on_the_last_line_and_exits_0_when_completed(cli_store, capsys):
    from monitoring_core.cli import main

    register(cli_store)
    log(cli_store, drift=True)
    span = f"{WINDOW.start:%Y-%m-%dT%H:%M}..{WINDOW.end:%Y-%m-%dT%H:%M}"
    assert main(["--actor", "alice", "analyze", "--model-id", MODEL, "--window", span, "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    record = cli_store.records.get(result["record_id"])
    assert result["max_severity"] == record.max_severity == "CRITICAL"
    assert result["aggregated_score"] == record.aggregated_score and result["incident_ids"] == record.incident_ids
    assert result["status"] == "completed" and captured.out.count("\n") == 2  # a summary line, then the JSON
    assert audit_entries(cli_store)[0].details["trigger"] == "cli"


def test_analyze_exits_non_zero_with_one_line_when_it_cannot_run(cli_store, capsys):
    from monitoring_core.cli import main

    register(cli_store)
    assert main(["--quiet", "analyze", "--model-id", MODEL, "--window", "24h", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["status"] == "skipped"
    assert captured.err.strip().endswith("analysis skipped: no predictions of 'loan' in "
                                         + captured.err.split(" in ")[-1].strip())
    assert main(["--quiet", "analyze", "--model-id", "nobody"]) == 2
    assert capsys.readouterr().err.strip() == "error: model 'nobody' is not registered"
    assert main(["--quiet", "analyze", "--model-id", MODEL, "--window", "lately"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
