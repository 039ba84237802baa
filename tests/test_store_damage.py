"""A damaged store is reported, never crashed on and never silently replaced: damaged
documents (on every backend), and database files that are not Fairwatch databases."""

from __future__ import annotations

import sqlite3

import pytest

from monitoring_core import audit, config
from monitoring_core.cli import main
from monitoring_core.errors import StoreDamaged
from monitoring_core.models.audit import AuditEvent
from monitoring_core.models.common import SYSTEM, Severity
from monitoring_core.models.incidents import Incident
from monitoring_core.storage.sqlite import APPLICATION_ID, SqliteStore


def _damage(store, collection: str, doc_id) -> None:
    """What a disk fault or a hand edit leaves behind: a document that no longer parses."""
    if hasattr(store, "path"):  # the embedded store: JSON cut short
        conn = store.db.connection()
        conn.execute(f"DROP TRIGGER IF EXISTS {collection}__append_only")
        conn.execute(f"UPDATE {collection} SET doc = substr(doc, 1, 25) WHERE id = ?", (doc_id,))
    else:  # MongoDB: a field of the wrong type
        store.db[collection].update_one({"_id": doc_id}, {"$set": {"timestamp": "not a time", "created_at": [1]}})


def _record(store, n: int) -> None:
    for i in range(n):
        audit.record(store, AuditEvent.ANALYSIS_RUN, SYSTEM, target={"model_id": "loan"}, details={"i": i})


def test_a_damaged_audit_entry_is_named_and_the_chain_goes_on(store):
    _record(store, 3)
    _damage(store, "monitoring_audit_logs", 2)
    report = audit.verify(store)
    assert not report.valid and report.damaged == [2] and report.total_entries == 3
    assert len(report.problems) == 1 and str(report.problems[0]).startswith("entry 2: damaged")
    _record(store, 1)  # a later ingest or analysis still gets its audit entry
    after = audit.verify(store)
    assert after.damaged == [2] and after.last_seq == 4 and len(after.problems) == 1
    with pytest.raises(StoreDamaged, match=r"monitoring_audit_logs seq=2 is damaged"):
        store.audit.list()
    assert [e.seq for e in store.audit.list(limit=2)] == [4, 3]


def test_appending_after_a_damaged_last_entry_links_to_its_stored_hash(store):
    _record(store, 2)
    stored_hash = store.audit.last().hash
    _damage(store, "monitoring_audit_logs", 2)
    _record(store, 1)
    report = audit.verify(store)
    assert report.damaged == [2] and len(report.problems) == 1  # entry 3 links to entry 2
    assert store.audit.list(limit=1)[0].prev_hash == stored_hash


def test_a_damaged_document_is_store_damaged_naming_it_and_others_stay_readable(store):
    broken = store.incidents.insert(Incident(model_id="loan", severity=Severity.WARNING))
    fine = store.incidents.insert(Incident(model_id="fraud", severity=Severity.WARNING))
    _damage(store, "incidents", broken.incident_id)
    with pytest.raises(StoreDamaged, match=f"incidents incident_id='{broken.incident_id}' is damaged"):
        store.incidents.get(broken.incident_id)
    with pytest.raises(StoreDamaged, match=broken.incident_id):
        store.incidents.update(broken.incident_id, {"status": "resolved"})
    assert store.incidents.list(model_id="fraud") == [fine]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(folder))
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("FAIRWATCH_BACKEND", raising=False)
    config.get_settings.cache_clear()
    yield folder
    config.get_settings.cache_clear()


def test_verify_audit_and_ingest_on_a_damaged_audit_log(data_dir, tmp_path, capsys):
    store = SqliteStore(data_dir / "fairwatch.db")
    store.ensure_schema()
    _record(store, 3)
    _damage(store, "monitoring_audit_logs", 2)
    store.close()
    assert main(["verify-audit"]) == 1
    out = capsys.readouterr().out
    assert "damaged entries: 2" in out and "entry 2: damaged" in out
    path = tmp_path / "rows.csv"
    path.write_text("prediction_id,timestamp,model_version,prediction,confidence,features.income\n"
                    "p1,2026-11-01T10:00:00Z,2.3,approve,0.9,1\np2,2026-11-01T10:01:00Z,2.3,reject,0.8,2\n")
    assert main(["--quiet", "ingest", str(path), "--model-id", "loan"]) == 0
    assert "2 stored" in capsys.readouterr().out
    reopened = SqliteStore(data_dir / "fairwatch.db")
    assert reopened.audit.list(limit=1)[0].event_type == AuditEvent.PREDICTIONS_INGESTED and reopened.audit.tip().seq == 4


@pytest.mark.parametrize("content, message", [
    (b"", "is empty \\(0 bytes\\)"),
    (b"model_id,timestamp\nloan,2026-01-01\n", "is not a SQLite database"),
])
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(data_dir, capsys, content, message):
    data_dir.mkdir()
    path = data_dir / "fairwatch.db"
    path.write_bytes(content)
    with pytest.raises(StoreDamaged, match=message):
        SqliteStore(path)
    assert main(["status"]) == 2
    assert "not a Fairwatch database" in capsys.readouterr().err
    assert path.read_bytes() == content


def test_another_applications_sqlite_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    with pytest.raises(StoreDamaged, match=r"SQLite database of something else \(tables: invoices\)"):
        SqliteStore(path).ensure_schema()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_a_new_store_is_created_only_where_no_file_exists(tmp_path):
    path = tmp_path / "new" / "fw.db"
    SqliteStore(path).ensure_schema()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    SqliteStore(path).ensure_schema()  # recognised by its mark


def test_a_database_of_the_earlier_layout_is_adopted_with_its_documents(tmp_path):
    from monitoring_core.models.audit import AuditEntry
    from monitoring_core.storage.repositories import ChainTip

    first = audit.seal(AuditEntry(event_type=AuditEvent.DEMO_SEEDED, actor={"system": True}), None)
    second = audit.seal(AuditEntry(event_type=AuditEvent.ANALYSIS_RUN, actor={"system": True}),
                        ChainTip(first.seq, first.hash))
    path = tmp_path / "fw.db"
    with sqlite3.connect(path) as conn:  # the tables as the previous release wrote them, unmarked
        conn.execute("CREATE TABLE prediction_logs (pk INTEGER PRIMARY KEY, prediction_id TEXT NOT NULL UNIQUE, "
                     "model_id TEXT NOT NULL, timestamp INTEGER NOT NULL, ground_truth TEXT, "
                     "ground_truth_timestamp INTEGER)")
        conn.execute("CREATE TABLE drift_snapshots (id TEXT PRIMARY KEY, doc TEXT NOT NULL, model_id TEXT NOT NULL, "
                     "is_active INTEGER NOT NULL, created_at INTEGER NOT NULL)")
        conn.execute("CREATE TABLE monitoring_audit_logs (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL, "
                     "event_type TEXT NOT NULL, timestamp INTEGER NOT NULL, model_id TEXT, user_id TEXT, "
                     "hash TEXT NOT NULL)")
        conn.execute("CREATE INDEX ix_audit_ts ON monitoring_audit_logs(timestamp)")
        conn.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON monitoring_audit_logs "
                     "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END")
        conn.executemany("INSERT INTO monitoring_audit_logs VALUES (?, ?, ?, 0, NULL, NULL, ?)",
                         [(e.seq, e.model_dump_json(), str(e.event_type), e.hash) for e in (first, second)])
    store = SqliteStore(path)
    store.ensure_schema()
    assert [e.seq for e in store.audit.list()] == [2, 1]
    # Entries intact; the signed tip checkpoint is new, so it appears with the next entry.
    assert [p.kind for p in audit.verify(store).problems] == [audit.Damage.MISSING_CHECKPOINT]
    assert store.schema_problems() == []
    _record(store, 1)
    after = audit.verify(store)
    assert after.valid and after.last_seq == after.checkpoint_seq == 3


def test_opening_a_second_store_of_the_file_keeps_the_first_stores_locks(tmp_path):
    # The app holds a store while its scheduler opens another of the same file. Reading the
    # header with open()/close() dropped this process's POSIX locks, so another process
    # could write at the same time and the file was corrupted (seen in the browser tests).
    import subprocess
    import sys

    path = tmp_path / "fairwatch.db"
    first = SqliteStore(path)
    first.ensure_schema()
    with first.db.tx():  # this process uses the file (WAL: a shared lock on it)
        first.db.connection().execute("SELECT count(*) FROM sqlite_master").fetchone()
        SqliteStore(path)
        other = subprocess.run([sys.executable, "-c", (
            "import sqlite3; c = sqlite3.connect(%r, timeout=0, isolation_level=None); "
            "print(c.execute('PRAGMA journal_mode=DELETE').fetchone()[0])") % str(path)],
            capture_output=True, text=True, timeout=60)
    # leaving WAL needs the file to itself: refused while this process uses it
    assert "database is locked" in other.stderr and "delete" not in other.stdout
    first.close()
