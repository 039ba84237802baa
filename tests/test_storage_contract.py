"""One contract, every backend: the embedded SQLite store for real, MongoDB through
mongomock, and a real MongoDB server when MONGODB_URI is set."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring_core import audit
from monitoring_core.errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from monitoring_core.models import columns as col
from monitoring_core.models.alerts import Alert, AlertSuppression
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import SYSTEM, Actor, Severity
from monitoring_core.models.incidents import Incident, TriggeredMetric
from monitoring_core.models.predictions import PredictionLog
from monitoring_core.models.registry import RegisteredModel
from monitoring_core.models.thresholds import MonitoringConfig
from monitoring_core.storage.base import validated
from monitoring_core.storage.sqlite import SqliteStore

from .factories import NOW, make_record, make_snapshot, prediction_frame

WINDOW_COLUMNS = [col.PREDICTION_ID, col.TIMESTAMP, col.MODEL_VERSION, col.PREDICTED_CLASS, col.CONFIDENCE,
                  col.probability("approve"), col.feature("income"), col.feature("purpose"),
                  col.protected("gender"), col.GROUND_TRUTH, col.explanation("income")]


def test_window_round_trips_values_and_dtypes(store):
    frame = prediction_frame(500)
    report = store.predictions.insert_frame(frame)
    assert report.inserted == 500 and report.duplicate_ids == []
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30), WINDOW_COLUMNS)
    expected = frame.sort_values(col.TIMESTAMP, kind="stable")[WINDOW_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(window, expected, check_dtype=True)


def test_window_is_half_open_and_only_reads_asked_columns(store):
    frame = prediction_frame(200)
    store.predictions.insert_frame(frame)
    start, end = frame[col.TIMESTAMP].iloc[50], frame[col.TIMESTAMP].iloc[150]
    window = store.predictions.window("loan", start, end, [col.TIMESTAMP, col.feature("income")])
    assert list(window.columns) == [col.TIMESTAMP, col.feature("income")]
    inside = frame[(frame[col.TIMESTAMP] >= start) & (frame[col.TIMESTAMP] < end)]
    assert len(window) == len(inside) == 100
    assert window[col.TIMESTAMP].min() == start and window[col.TIMESTAMP].max() < end


def test_never_logged_column_reads_back_missing(store):
    store.predictions.insert_frame(prediction_frame(20))
    window = store.predictions.window("loan", NOW - timedelta(days=1), NOW + timedelta(days=1),
                                      [col.feature("never_logged")])
    assert len(window) == 20 and window[col.feature("never_logged")].isna().all()


def test_other_models_and_empty_windows(store):
    store.predictions.insert_frame(prediction_frame(30, model_id="loan"))
    store.predictions.insert_frame(prediction_frame(10, model_id="fraud", start_id=1000))
    assert store.predictions.model_ids() == ["fraud", "loan"]
    assert store.predictions.count("fraud") == 10
    empty = store.predictions.window("loan", NOW + timedelta(days=400), NOW + timedelta(days=401),
                                     [col.TIMESTAMP, col.feature("income"), col.GROUND_TRUTH])
    assert empty.empty and list(empty.columns) == [col.TIMESTAMP, col.feature("income"), col.GROUND_TRUTH]
    assert store.predictions.window("nobody", NOW - timedelta(days=9), NOW, [col.TIMESTAMP]).empty


def test_many_small_batches_read_back_in_time_order(store):
    frame = prediction_frame(700).sample(frac=1.0, random_state=3)  # arrive out of order
    for start in range(0, len(frame), 10):
        store.predictions.insert_frame(frame.iloc[start:start + 10])
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30),
                                      [col.PREDICTION_ID, col.TIMESTAMP, col.feature("income")])
    assert len(window) == 700
    assert window[col.TIMESTAMP].is_monotonic_increasing
    assert set(window[col.PREDICTION_ID]) == set(frame[col.PREDICTION_ID])
    joined = window.merge(frame[[col.PREDICTION_ID, col.feature("income")]], on=col.PREDICTION_ID, suffixes=("", "_in"))
    np.testing.assert_array_equal(joined[col.feature("income")], joined[col.feature("income") + "_in"])


def test_merged_segments_keep_every_value(store):
    frame = prediction_frame(2600)
    for start in range(0, len(frame), 10):  # enough small batches for merges of merges
        store.predictions.insert_frame(frame.iloc[start:start + 10])
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30), WINDOW_COLUMNS)
    pd.testing.assert_frame_equal(window, frame[WINDOW_COLUMNS].reset_index(drop=True))


def test_duplicate_ids_are_reported_and_good_rows_kept(store):
    frame = prediction_frame(20)
    store.predictions.insert_frame(frame.iloc[:5])
    again = pd.concat([frame.iloc[3:20], frame.iloc[[10]]])
    report = store.predictions.insert_frame(again)
    assert report.inserted == 15
    assert sorted(report.duplicate_ids) == sorted([frame[col.PREDICTION_ID].iloc[3], frame[col.PREDICTION_ID].iloc[4],
                                                   frame[col.PREDICTION_ID].iloc[10]])
    assert store.predictions.count("loan") == 20


def test_mixed_type_feature_keeps_the_stray_text(store):
    frame = prediction_frame(5)
    frame[col.feature("income")] = pd.Series([1.0, "n/a", 3.0, None, 5.0], dtype=object)
    store.predictions.insert_frame(frame)
    window = store.predictions.window("loan", NOW - timedelta(days=1), NOW + timedelta(days=1),
                                      [col.feature("income")])
    assert window[col.feature("income")].tolist()[:3] == [1.0, "n/a", 3.0]
    assert pd.isna(window[col.feature("income")].iloc[3])


def test_documents_summary_find_and_ground_truth(store):
    log = PredictionLog(prediction_id="p-1", model_id="loan", model_version="2.3.0", timestamp=NOW,
                        features={"income": 52_000.0, "purpose": "car", "missing": None},
                        prediction={"class": "approve", "confidence": 0.81,
                                    "probabilities": {"approve": 0.81, "reject": 0.19}},
                        metadata={"user_id": "u-9", "latency_ms": 12.5, "protected_attributes": {"gender": "female"}})
    assert store.predictions.insert_many([log]).inserted == 1
    found = store.predictions.find("p-1")
    assert found.features == {"income": 52_000.0, "purpose": "car"}
    assert found.prediction.probabilities == {"approve": 0.81, "reject": 0.19}
    assert found.metadata.protected_attributes == {"gender": "female"} and found.metadata.user_id == "u-9"
    assert store.predictions.find("nope") is None

    report = store.predictions.record_ground_truth("loan", {"p-1": "reject", "ghost": "approve"}, NOW + timedelta(days=3))
    assert report.updated == 1 and report.unknown_ids == ["ghost"]
    labelled = store.predictions.find("p-1")
    assert labelled.ground_truth == "reject" and labelled.ground_truth_timestamp == NOW + timedelta(days=3)
    summary = store.predictions.summary("loan")
    assert (summary.count, summary.labelled, summary.first, summary.last) == (1, 1, NOW, NOW)
    assert summary.model_versions == ["2.3.0"]
    assert col.feature("income") in store.predictions.columns("loan")


def test_predictions_purge_before_cutoff(store):
    frame = prediction_frame(100)
    store.predictions.insert_frame(frame)
    cutoff = frame[col.TIMESTAMP].iloc[40]
    assert store.predictions.purge_before(cutoff) == 40
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30),
                                      [col.TIMESTAMP, col.PREDICTION_ID])
    assert len(window) == 60 and window[col.TIMESTAMP].min() == cutoff
    assert store.predictions.count("loan") == 60


# -- documents -------------------------------------------------------------------------------


def test_insert_get_and_duplicate_id_writes_nothing(store):
    incident = Incident(model_id="loan", severity=Severity.WARNING, metrics_triggered=[
        TriggeredMetric(metric_name="psi:income", value=0.18, threshold=0.10, severity=Severity.WARNING)])
    store.incidents.insert(incident)
    assert store.incidents.get(incident.incident_id) == incident
    clash = incident.model_copy(update={"model_id": "other"})
    with pytest.raises(Conflict, match="already exists; nothing was written"):
        store.incidents.insert(clash)
    assert store.incidents.get(incident.incident_id).model_id == "loan"
    with pytest.raises(NotFound):
        store.incidents.get("INC-missing")


def test_compare_and_set_update(store):
    incident = store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING))
    updated = store.incidents.update(incident.incident_id, {"status": "investigating", "assigned_to": "ana"},
                                     expect={"status": "open"})
    assert updated.status == "investigating" and store.incidents.get(incident.incident_id).assigned_to == "ana"
    with pytest.raises(Conflict, match="expected open"):
        store.incidents.update(incident.incident_id, {"status": "resolved"}, expect={"status": "open"})
    with pytest.raises(InvalidInput, match="assigned_to"):  # CRITICAL needs an assignee
        store.incidents.update(incident.incident_id, {"severity": "CRITICAL", "assigned_to": None})
    with pytest.raises(InvalidInput, match="unknown"):
        store.incidents.update(incident.incident_id, {"colour": "red"})
    assert store.incidents.get(incident.incident_id).severity == Severity.WARNING


def test_concurrent_transitions_let_exactly_one_win(store):
    incident = store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING))
    outcomes: list[str] = []

    def acknowledge(who):
        try:
            store.incidents.update(incident.incident_id, {"status": "investigating", "assigned_to": who},
                                   expect={"status": "open"})
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=acknowledge, args=(f"user{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]


def test_incident_queries(store):
    old = store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING, created_at=NOW - timedelta(days=2),
                                          metrics_triggered=[TriggeredMetric(metric_name="psi:income", value=0.2,
                                                                             threshold=0.1)]))
    new = store.incidents.insert(Incident(model_id="loan", severity=Severity.CRITICAL, assigned_to="ana",
                                          created_at=NOW, affected_groups=["gender=female"],
                                          metrics_triggered=[TriggeredMetric(metric_name="demographic_parity:gender",
                                                                             value=0.14, threshold=0.10)]))
    store.incidents.insert(Incident(model_id="fraud", severity=Severity.INFO, created_at=NOW))
    assert [i.incident_id for i in store.incidents.list(model_id="loan")] == [new.incident_id, old.incident_id]
    assert [i.incident_id for i in store.incidents.list(severities=["CRITICAL"])] == [new.incident_id]
    assert len(store.incidents.list(since=NOW - timedelta(hours=1))) == 2
    assert store.incidents.open_for("loan", "psi:income").incident_id == old.incident_id
    assert store.incidents.open_for("loan", "psi:inc") is None  # whole names only
    store.incidents.update(old.incident_id, {"status": "resolved"})
    assert store.incidents.open_for("loan", "psi:income") is None


def test_alert_dedup_lookup_and_retention_spares_critical(store):
    def alert(severity, at):
        return Alert(incident_id="INC-1", model_id="loan", metric_name="psi:income", metric_value=0.3,
                     threshold=0.25, severity=severity, created_at=at)

    warning_old, critical_old = alert("WARNING", NOW - timedelta(hours=8)), alert("CRITICAL", NOW - timedelta(hours=8))
    warning_new = alert("WARNING", NOW)
    for a in (warning_old, critical_old, warning_new):
        store.alerts.insert(a)
    found = store.alerts.recent("loan", "psi:income", "WARNING", since=NOW - timedelta(hours=6))
    assert found.alert_id == warning_new.alert_id
    assert store.alerts.recent("loan", "psi:income", "CRITICAL", since=NOW - timedelta(hours=6)) is None
    assert store.alerts.purge_before(NOW - timedelta(hours=1)) == 1
    remaining = {a.alert_id for a in store.alerts.list()}
    assert remaining == {critical_old.alert_id, warning_new.alert_id}


def test_suppressions_in_force(store):
    rule = AlertSuppression(model_id="loan", metric_name="psi:income", start_time=NOW - timedelta(hours=1),
                            end_time=NOW + timedelta(hours=1), reason="pipeline maintenance",
                            suppression_type="maintenance", created_by="ana")
    store.suppressions.insert(rule)
    assert [r.suppression_id for r in store.suppressions.active("loan", NOW)] == [rule.suppression_id]
    assert store.suppressions.active("loan", NOW + timedelta(hours=1)) == []
    assert store.suppressions.list(include_expired=False, at=NOW + timedelta(hours=2)) == []
    assert len(store.suppressions.list()) == 1


def test_baseline_activation_keeps_one_active(store):
    first = store.baselines.insert(make_snapshot("loan", active=True, created_at=NOW - timedelta(days=30)))
    second = store.baselines.insert(make_snapshot("loan", active=False, created_at=NOW))
    with pytest.raises(Conflict, match="already has an active baseline"):
        store.baselines.insert(make_snapshot("loan", active=True))
    assert store.baselines.active("loan").snapshot_id == first.snapshot_id
    store.baselines.activate(second.snapshot_id, at=NOW)
    assert store.baselines.active("loan").snapshot_id == second.snapshot_id
    archived = store.baselines.get(first.snapshot_id)
    assert not archived.is_active and archived.archived_at == NOW
    assert [s.snapshot_id for s in store.baselines.list("loan")] == [second.snapshot_id, first.snapshot_id]
    assert store.baselines.active("fraud") is None


def test_a_refused_activation_leaves_the_previous_baseline_active(store, monkeypatch):
    first = store.baselines.insert(make_snapshot("loan", active=True, created_at=NOW - timedelta(days=30)))
    second = store.baselines.insert(make_snapshot("loan", active=False, created_at=NOW))
    replace = store.driver.replace

    def changed_meanwhile(collection, doc, rev):  # someone edits the target between the two writes
        return False if getattr(doc, "snapshot_id", None) == second.snapshot_id else replace(collection, doc, rev)

    monkeypatch.setattr(store.driver, "replace", changed_meanwhile)
    with pytest.raises(Conflict, match="changed by someone else"):
        store.baselines.activate(second.snapshot_id, at=NOW)
    monkeypatch.undo()
    assert store.baselines.active("loan").snapshot_id == first.snapshot_id
    assert store.baselines.get(first.snapshot_id).archived_at is None
    store.baselines.activate(second.snapshot_id, at=NOW)  # revisions still line up afterwards
    assert store.baselines.active("loan").snapshot_id == second.snapshot_id


def test_concurrent_activations_leave_exactly_one_active(store):
    snapshots = [store.baselines.insert(make_snapshot("loan", created_at=NOW - timedelta(days=i))) for i in range(4)]
    won: list[str] = []

    def activate(snapshot_id):
        try:
            store.baselines.activate(snapshot_id, at=NOW)
            won.append(snapshot_id)
        except Conflict:
            pass

    threads = [threading.Thread(target=activate, args=(s.snapshot_id,)) for s in snapshots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    active = [s.snapshot_id for s in store.baselines.list("loan") if s.is_active]
    assert len(active) == 1 and active[0] in won


def test_records_by_time_and_retention(store):
    records = [store.records.insert(make_record("loan", NOW - timedelta(days=d))) for d in (0, 1, 20)]
    assert [r.record_id for r in store.records.list("loan")] == [r.record_id for r in records]
    assert store.records.latest("loan").record_id == records[0].record_id
    assert [r.record_id for r in store.records.list("loan", start=NOW - timedelta(days=1, hours=1))] == \
        [records[0].record_id, records[1].record_id]
    assert store.records.list("loan", end=NOW - timedelta(days=1)) == [records[2]]
    assert store.records.purge_before(NOW - timedelta(days=10)) == 1


def test_model_registry(store):
    model = RegisteredModel(model_id="loan", display_name="Loan approval",
                            monitoring=MonitoringConfig(positive_label="approve"))
    store.models.upsert(model)
    store.models.upsert(model.model_copy(update={"display_name": "Loans"}))
    assert [m.display_name for m in store.models.list()] == ["Loans"]
    with pytest.raises(NotFound):
        store.models.get("nope")


# -- audit ------------------------------------------------------------------------------------


def test_audit_chain_appends_and_verifies(store):
    actor = Actor(user_id="ana", role="ml_engineer", user_email="ana@example.com")
    for i in range(5):
        audit.record(store, AuditEvent.BASELINE_CREATED, actor, target={"model_id": "loan"}, details={"n": i})
    entries = store.audit.list()
    assert [e.seq for e in entries] == [5, 4, 3, 2, 1]
    assert entries[-1].prev_hash == audit.GENESIS_HASH and entries[0].prev_hash == entries[1].hash
    report = audit.verify(store)
    assert report.valid and report.total_entries == 5
    assert [e.seq for e in store.audit.list(model_id="loan", event_types=["baseline_created"], limit=2)] == [5, 4]


def test_audit_concurrent_writers_keep_one_chain(store):
    def write(name):
        for i in range(10):
            audit.record(store, AuditEvent.ANALYSIS_RUN, SYSTEM, target={"model_id": name}, details={"i": i})

    threads = [threading.Thread(target=write, args=(f"m{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify(store)
    assert report.valid, report.problems
    assert report.total_entries == 30 and (report.first_seq, report.last_seq) == (1, 30)


# -- lifecycle ---------------------------------------------------------------------------------


def test_concurrent_prediction_writers(store):
    frames = [prediction_frame(300, start_id=i * 1000) for i in range(2)]
    errors: list[BaseException] = []

    def write(frame):
        try:
            for start in range(0, len(frame), 25):
                store.predictions.insert_frame(frame.iloc[start:start + 25])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.predictions.count("loan") == 600
    window = store.predictions.window("loan", NOW - timedelta(days=30), NOW + timedelta(days=30), [col.PREDICTION_ID])
    assert window[col.PREDICTION_ID].is_unique and len(window) == 600


def test_data_survives_reopening(store, reopen):
    store.predictions.insert_frame(prediction_frame(50))
    store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING))
    audit.record(store, AuditEvent.DEMO_SEEDED, SYSTEM)
    again = reopen()
    assert again.predictions.count("loan") == 50
    assert len(again.incidents.list()) == 1
    assert audit.verify(again).valid


def test_purge_expired_applies_the_retention_policy(store):
    store.predictions.insert_frame(prediction_frame(10))
    recent = prediction_frame(10, start_id=500)
    recent[col.TIMESTAMP] = recent[col.TIMESTAMP] + pd.Timedelta(days=60)
    store.predictions.insert_frame(recent)
    store.records.insert(make_record("loan", NOW))
    store.incidents.insert(Incident(model_id="loan", severity=Severity.INFO, created_at=NOW))
    report = store.purge_expired(NOW + timedelta(days=120))  # 90-day retention of predictions
    assert report.removed["prediction_logs"] == 10 and report.removed["monitoring_records"] == 0
    assert store.predictions.count("loan") == 10
    later = store.purge_expired(NOW + timedelta(days=5 * 365 + 2))
    assert later.removed["monitoring_records"] == 1
    assert len(store.incidents.list()) == 1  # incidents are kept forever


def test_ensure_schema_again_keeps_data_and_adds_no_index(store, reopen):
    incident = store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING))
    audit.record(store, AuditEvent.DEMO_SEEDED, SYSTEM)
    before = {c.name: store.driver.indexes(c) for c in store.collections()}
    store.ensure_schema()
    again = reopen()  # ensure_schema runs on opening too
    again.ensure_schema()
    assert {c.name: again.driver.indexes(c) for c in again.collections()} == before
    assert again.incidents.get(incident.incident_id) == incident and audit.verify(again).valid
    assert again.schema_problems() == []


def test_bad_documents_are_refused_naming_the_field(store):
    with pytest.raises(InvalidInput, match="prediction.confidence"):
        validated(PredictionLog, {"model_id": "m", "model_version": "1", "timestamp": NOW, "features": {"a": 1},
                                  "prediction": {"class": "a", "confidence": 1.5}})
    with pytest.raises(InvalidInput, match="assigned_to"):
        store.incidents.insert({"model_id": "loan", "severity": "CRITICAL"})
    with pytest.raises(InvalidInput, match="affected_groups"):
        store.incidents.insert({"model_id": "loan", "severity": "WARNING", "metrics_triggered": [
            {"metric_name": "disparate_impact:race", "value": 0.7, "threshold": 0.8}]})
    assert store.incidents.list() == []


def _index_name(store, collection, index) -> str:
    if hasattr(store, "path"):  # the embedded store
        return store.driver._index_ddl(collection, index)[0]
    info = store.db[collection.name].index_information()
    return next(name for name, spec in info.items() if [tuple(k) for k in spec["key"]] == list(index.keys))


def _drop_index(store, collection, index) -> None:
    name = _index_name(store, collection, index)
    if hasattr(store, "path"):
        store.db.connection().execute(f"DROP INDEX {name}")
    else:
        store.db[collection.name].drop_index(name)


def test_the_indexes_are_the_declared_ones(store):
    assert store.schema_problems() == []
    present = {c.name: store.driver.indexes(c) for c in store.collections()}
    # The rules that keep the data right, stated here rather than read from the declarations.
    one_active = [i for i in present["drift_snapshots"] if i.keys == (("model_id", 1),)]
    assert len(one_active) == 1 and one_active[0].unique and one_active[0].partial
    assert any(i.keys == (("created_at", 1),) and i.partial for i in present["alerts"])
    assert any(i.keys == (("model_id", 1), ("created_at", -1)) and not i.unique for i in present["incidents"])
    assert any(i.keys == (("event_type", 1), ("timestamp", -1)) for i in present["monitoring_audit_logs"])


def test_a_missing_index_is_reported_and_restored(store):
    declared = [(c, index) for c in store.collections() for index in c.indexes]
    assert len(declared) >= 20
    for collection, index in declared:
        _drop_index(store, collection, index)
        problems = store.schema_problems()
        assert len(problems) == 1 and problems[0].startswith(f"{collection.name}: index"), (collection.name, index)
        store.ensure_schema()
        assert store.schema_problems() == []


def test_an_index_without_its_rule_is_reported_and_repaired(store):
    from monitoring_core.storage.repositories import Baselines

    collection = Baselines.collection
    one_active = next(index for index in collection.indexes if index.unique)
    name = _index_name(store, collection, one_active)
    _drop_index(store, collection, one_active)
    if hasattr(store, "path"):  # same name and keys, neither unique nor partial
        store.db.connection().execute(f"CREATE INDEX {name} ON drift_snapshots(model_id)")
    else:
        store.db["drift_snapshots"].create_index([("model_id", 1)], name=name)
    assert len(store.schema_problems()) == 1
    store.ensure_schema()
    assert store.schema_problems() == []
    store.baselines.insert(make_snapshot("loan", active=True))
    with pytest.raises(Conflict, match="already has an active baseline"):
        store.baselines.insert(make_snapshot("loan", active=True))


# -- backend-specific failures -----------------------------------------------------------------


def test_embedded_store_reports_a_locked_database(tmp_path):
    path = tmp_path / "fw.db"
    holder = SqliteStore(path)
    holder.ensure_schema()
    waiting = SqliteStore(path, busy_timeout_ms=200)
    with holder.transaction():
        holder.predictions.insert_frame(prediction_frame(3))
        with pytest.raises(StoreUnavailable, match="locked"):
            waiting.predictions.insert_frame(prediction_frame(3, start_id=100))
    assert waiting.predictions.count("loan") == 3


def test_embedded_store_cannot_create_its_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreUnavailable, match="cannot create the data folder"):
        SqliteStore(blocker / "sub" / "fw.db")


def test_unreachable_mongodb_is_a_clear_error():
    from monitoring_core.storage.mongo import MongoStore

    with pytest.raises(StoreUnavailable) as caught:
        MongoStore.connect("mongodb://fairwatch:s3cret@127.0.0.1:9/?directConnection=true", "fw", timeout_ms=300)
    assert "127.0.0.1:9" in str(caught.value) and "s3cret" not in str(caught.value)


def test_embedded_store_reports_a_read_only_file_and_still_reads(tmp_path):
    import os
    import subprocess

    path = tmp_path / "fw.db"
    store = SqliteStore(path)
    store.ensure_schema()
    store.predictions.insert_frame(prediction_frame(5))
    store.close()
    path.chmod(0o444)
    immutable = os.geteuid() == 0  # root ignores permissions: make the file immutable instead
    if immutable and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a file read-only for root")
    try:
        reader = SqliteStore(path)
        assert reader.predictions.count("loan") == 5
        with pytest.raises(StoreUnavailable, match="is read-only: check the file's and folder's permissions"):
            reader.predictions.insert_frame(prediction_frame(5, start_id=50))
        assert reader.predictions.count("loan") == 5
        reader.close()
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_mongodb_indexes_carry_ttl_and_the_partial_rules():
    import mongomock

    from monitoring_core.storage.mongo import MongoStore
    from monitoring_core.storage.retention import RetentionPolicy

    store = MongoStore(mongomock.MongoClient(tz_aware=True), "fw", RetentionPolicy(prediction_days=30))
    store.ensure_schema()
    info = {name: store.db[name].index_information() for name in store.db.list_collection_names()}
    assert info["prediction_logs"]["ttl_timestamp"]["expireAfterSeconds"] == 30 * 86_400
    assert info["monitoring_records"]["ttl_timestamp"]["expireAfterSeconds"] == 5 * 365 * 86_400
    # The audit log has no TTL: its retention stores an anchor first (monitoring_core.audit).
    assert not any("expireAfterSeconds" in spec for spec in info["monitoring_audit_logs"].values())
    alerts_ttl = info["alerts"]["ttl_created_at_noncritical"]
    assert alerts_ttl["expireAfterSeconds"] == 365 * 86_400
    assert alerts_ttl["partialFilterExpression"] == {"severity": {"$gt": "CRITICAL"}}
    assert sorted(s for s in ("INFO", "WARNING", "CRITICAL") if s > "CRITICAL") == ["INFO", "WARNING"]
    one_active = info["drift_snapshots"]["one_active_per_model"]
    assert one_active["unique"] and one_active["partialFilterExpression"] == {"is_active": True}
    assert any(spec["key"] == [("model_id", 1), ("timestamp", -1)] for spec in info["prediction_logs"].values())
    assert "incidents" not in {k for k, v in info.items() if any("expireAfterSeconds" in s for s in v.values())}


def test_mongodb_a_changed_retention_is_reported_and_applied():
    import mongomock

    from monitoring_core.storage.mongo import MongoStore
    from monitoring_core.storage.retention import RetentionPolicy

    client = mongomock.MongoClient(tz_aware=True)
    MongoStore(client, "fw", RetentionPolicy(prediction_days=30)).ensure_schema()
    longer = MongoStore(client, "fw", RetentionPolicy(prediction_days=60))
    problems = longer.schema_problems()
    assert len(problems) == 1 and problems[0].startswith("prediction_logs") and "5184000" in problems[0]
    longer.ensure_schema()
    assert longer.schema_problems() == []
    assert longer.db.prediction_logs.index_information()["ttl_timestamp"]["expireAfterSeconds"] == 60 * 86_400

