"""The audit log: a signed hash chain that shows every edit, deletion, insertion, reordering
and truncation by entry, on every backend; concurrent appenders keep one chain; retention
keeps it verifiable; the CLI verifies and exports it.

The tamper tests write into the database as a determined editor would: raw sqlite3 on the
file (after dropping the append-only trigger), the raw MongoDB collection otherwise.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from monitoring_core import audit, clock, config
from monitoring_core.audit import AuditKey, Damage
from monitoring_core.cli import main
from monitoring_core.errors import ConfigError, StoreUnavailable
from monitoring_core.models.audit import AuditEntry, AuditEvent
from monitoring_core.models.common import SYSTEM, Actor
from monitoring_core.storage.driver import DuplicateKey
from monitoring_core.storage.repositories import ChainTip
from monitoring_core.storage.sqlite import SqliteStore, to_ms

LOG = "monitoring_audit_logs"
ANA = Actor(user_id="ana", role="ml_engineer", user_email="ana@example.com")
WRONG_KEY = AuditKey(b"an attacker's guess at the key")


def _record(store, n: int, model_id: str = "loan") -> list[AuditEntry]:
    return [audit.record(store, AuditEvent.ANALYSIS_RUN, ANA, target={"model_id": model_id}, details={"i": i})
            for i in range(n)]


def _found(report) -> list[tuple[int, Damage]]:
    return [(p.seq, p.kind) for p in report.problems]


# -- what a determined editor does, per backend ---------------------------------------------------


def _raw(store):
    """A connection of the editor's own, with the append-only trigger dropped."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute(f"DROP TRIGGER IF EXISTS {LOG}__append_only")
    return conn


def _edit(store, seq: int, details: dict) -> None:
    if hasattr(store, "path"):
        _raw(store).execute(f"UPDATE {LOG} SET doc = json_set(doc, '$.details', json(?)) WHERE id = ?",
                            (json.dumps(details), seq))
    else:
        store.db[LOG].update_one({"_id": seq}, {"$set": {"details": details}})


def _delete(store, *seqs: int) -> None:
    if hasattr(store, "path"):
        _raw(store).execute(f"DELETE FROM {LOG} WHERE id IN ({', '.join('?' * len(seqs))})", seqs)
    else:
        store.db[LOG].delete_many({"_id": {"$in": list(seqs)}})


def _put(store, entry: AuditEntry, at: int | None = None) -> None:
    """Store ``entry`` at position ``at`` (its own seq by default), bypassing Fairwatch."""
    at = entry.seq if at is None else at
    if hasattr(store, "path"):
        _raw(store).execute(
            f"INSERT INTO {LOG} (id, rev, doc, event_type, timestamp, target_model_id, actor_user_id, hash, "
            "prev_hash) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
            (at, entry.model_dump_json(), str(entry.event_type), to_ms(entry.timestamp), entry.target.model_id,
             entry.actor.user_id, entry.hash, entry.prev_hash))
    else:
        store.db[LOG].insert_one({"_id": at, **entry.model_dump(mode="python"), "_rev": 1})


def _swap(store, a: int, b: int) -> None:
    entries = {e.seq: e for e in store.audit.list() if e.seq in (a, b)}
    _delete(store, a, b)
    _put(store, entries[a], at=b)
    _put(store, entries[b], at=a)


def _write_checkpoint(store, forged) -> None:
    if hasattr(store, "path"):
        _raw(store).execute("UPDATE audit_checkpoints SET doc = ?, seq = ? WHERE id = ?",
                            (forged.model_dump_json(), forged.seq, forged.name))
    else:
        store.db.audit_checkpoints.replace_one({"_id": forged.name},
                                               {"_id": forged.name, **forged.model_dump(mode="python"), "_rev": 9})


# -- an intact chain ------------------------------------------------------------------------------


def test_an_intact_chain_verifies_with_its_checkpoint(store):
    entries = _record(store, 5)
    report = audit.verify_chain(store)
    assert report.valid and report.problems == []
    assert (report.total_entries, report.first_seq, report.last_seq, report.checkpoint_seq) == (5, 1, 5, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    assert audit.verify is audit.verify_chain


def test_the_hash_is_sha256_over_the_documented_canonical_json(store):
    entry = audit.record(store, AuditEvent.BASELINE_CREATED, ANA, target={"model_id": "loan"},
                         details={"b": 1, "a": "é"})
    canonical = audit.canonical_bytes(entry).decode()
    assert canonical.startswith('{"actor":{"role":"ml_engineer","system":false,"user_email":"ana@example.com"')
    assert '"details":{"a":"é","b":1}' in canonical and ", " not in canonical
    stamp = entry.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    assert f'"timestamp":"{stamp}"' in canonical and '"hash"' not in canonical and '"signature"' not in canonical
    import hashlib
    assert entry.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_seq_and_prev_hash_are_unique_in_the_store_so_the_chain_cannot_fork(store):
    first, second = _record(store, 2)
    unique = [i.keys for i in store.driver.indexes(store.audit.collection) if i.unique]
    assert (("prev_hash", 1),) in unique
    fork = audit.seal(AuditEntry(event_type=AuditEvent.ANALYSIS_RUN, actor={"system": True}),
                      ChainTip(first.seq, first.hash))
    with pytest.raises(DuplicateKey):  # a second successor of entry 1, under its own seq
        store.driver.insert(store.audit.collection, fork.model_copy(update={"seq": 7}))
    with pytest.raises(DuplicateKey):  # seq 2 again
        store.driver.insert(store.audit.collection, fork)


def test_an_append_that_keeps_losing_the_race_gives_up_clearly(store, monkeypatch):
    _record(store, 1)
    monkeypatch.setattr(store.audit, "tip", lambda: None)  # always sees a stale tip: seq 1 again
    with pytest.raises(StoreUnavailable, match="lost the race"):
        _record(store, 1)
    assert store.audit.link_at(2) is None


def test_entry_and_checkpoint_commit_with_the_change_or_not_at_all(tmp_path, monkeypatch):
    store = SqliteStore(tmp_path / "fw.db")
    store.ensure_schema()
    _record(store, 1)
    with pytest.raises(RuntimeError), store.transaction():
        _record(store, 1)
        raise RuntimeError("the state change failed after its entry was appended")
    with monkeypatch.context() as patch:
        patch.setattr(store.audit_checkpoints, "advance", lambda checkpoint: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            _record(store, 1)  # the checkpoint write fails: the entry goes too
    assert store.audit.tip().seq == 1 and store.audit_checkpoints.find("tip").seq == 1
    assert audit.verify_chain(store).valid


# -- tampering, each named by seq and kind --------------------------------------------------------


def test_an_edited_field_is_named(store):
    _record(store, 5)
    _edit(store, 3, {"i": 99})
    assert _found(audit.verify_chain(store)) == [(3, Damage.MODIFIED)]


def test_an_edit_rehashed_without_the_key_is_named(store):
    entries = _record(store, 5)
    forged = entries[2].model_copy(update={"details": {"i": 99}, "hash": None})
    forged = forged.model_copy(update={"hash": audit.entry_hash(forged)})
    _delete(store, 3)
    _put(store, forged)
    assert _found(audit.verify_chain(store)) == [(3, Damage.MODIFIED)]


def test_a_deleted_entry_in_the_middle_is_named(store):
    _record(store, 5)
    _delete(store, 3)
    report = audit.verify_chain(store)
    assert _found(report) == [(3, Damage.DELETED)] and "entry 3: missing (deleted)" in str(report.problems[0])


def test_deleted_first_entries_are_named(store):
    _record(store, 5)
    _delete(store, 1, 2)
    assert _found(audit.verify_chain(store)) == [(1, Damage.DELETED)]


def test_a_forged_entry_with_a_correct_hash_is_named_as_inserted(store):
    _record(store, 4)
    forged = audit.seal(AuditEntry(event_type=AuditEvent.BASELINE_ACTIVATED, actor={"user_id": "mallory"}),
                        store.audit.tip(), key=WRONG_KEY)
    assert audit.entry_hash(forged) == forged.hash  # the public algorithm, followed exactly
    _put(store, forged)
    assert _found(audit.verify_chain(store)) == [(5, Damage.INSERTED)]


def test_two_reordered_entries_are_named(store):
    _record(store, 5)
    _swap(store, 2, 3)
    report = audit.verify_chain(store)
    assert _found(report) == [(2, Damage.REORDERED), (3, Damage.REORDERED)]
    assert "entry 2: holds entry 3" in str(report.problems[0])


def test_a_truncated_tail_is_caught_by_the_checkpoint(store):
    _record(store, 5)
    _delete(store, 4, 5)
    report = audit.verify_chain(store)
    assert _found(report) == [(4, Damage.TRUNCATED)] and "entries 4..5: missing (truncated" in str(report.problems[0])
    _record(store, 1)  # appends go on from the stored tip; the gap stays visible
    assert _found(audit.verify_chain(store)) == [(5, Damage.TRUNCATED)]


def test_a_checkpoint_forged_without_the_key_is_named(store):
    entries = _record(store, 5)
    _delete(store, 4, 5)
    _write_checkpoint(store, audit.checkpoint("tip", ChainTip(3, entries[2].hash), WRONG_KEY))
    assert _found(audit.verify_chain(store)) == [(3, Damage.FORGED_CHECKPOINT)]


def test_a_deleted_checkpoint_is_named(store):
    _record(store, 3)
    store.audit_checkpoints.driver.delete(store.audit_checkpoints.collection, ())
    assert _found(audit.verify_chain(store)) == [(3, Damage.MISSING_CHECKPOINT)]


def test_another_key_does_not_verify(store):
    _record(store, 2)
    report = audit.verify_chain(store, key=WRONG_KEY)
    assert _found(report) == [(1, Damage.INSERTED), (2, Damage.FORGED_CHECKPOINT), (2, Damage.INSERTED)]


# -- concurrency ----------------------------------------------------------------------------------


def test_four_threads_append_one_unbroken_chain(store):
    errors: list[BaseException] = []

    def write(name):
        try:
            _record(store, 15, model_id=name)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"m{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = audit.verify_chain(store)
    assert report.valid, report.problems
    assert (report.total_entries, report.first_seq, report.last_seq, report.checkpoint_seq) == (60, 1, 60, 60)


def _append_from_another_process(path: str, model_id: str) -> int:
    store = SqliteStore(path)
    _record(store, 20, model_id=model_id)
    store.close()
    return 20


def test_two_processes_append_one_unbroken_chain(tmp_path):
    path = tmp_path / "fw.db"
    SqliteStore(path).ensure_schema()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(_append_from_another_process, [str(path)] * 2, ["a", "b"])) == [20, 20]
    report = audit.verify_chain(SqliteStore(path))
    assert report.valid, report.problems
    assert (report.total_entries, report.last_seq, report.checkpoint_seq) == (40, 40, 40)


# -- retention ------------------------------------------------------------------------------------

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def test_retention_purges_a_prefix_and_the_chain_still_verifies(store):
    with clock.frozen(T0) as advance:
        _record(store, 3)
        advance(timedelta(days=4 * 365))
        _record(store, 2)
    removed = audit.purge_expired(store, T0 + timedelta(days=5 * 365 + 1), SYSTEM)
    assert removed[LOG] == 3
    report = audit.verify_chain(store)
    assert report.valid, report.problems
    assert (report.anchor_seq, report.first_seq, report.last_seq) == (3, 4, 6)
    assert store.audit.last().event_type == AuditEvent.RETENTION_PURGE
    assert store.audit.last().details[LOG] == 3
    _delete(store, 4)  # deleting past the anchor is still caught
    assert _found(audit.verify_chain(store)) == [(4, Damage.DELETED)]


def test_retention_keeps_the_newest_entry_so_the_chain_goes_on(store):
    with clock.frozen(T0):
        _record(store, 3)
    audit.purge_expired(store, T0 + timedelta(days=20 * 365), SYSTEM)
    report = audit.verify_chain(store)
    assert report.valid, report.problems
    assert (report.anchor_seq, report.first_seq, report.last_seq) == (2, 3, 4)


def test_a_prefix_deleted_behind_a_forged_anchor_is_named(store):
    entries = _record(store, 4)
    _delete(store, 1, 2)
    store.audit_checkpoints.driver.insert(store.audit_checkpoints.collection,
                                          audit.checkpoint("anchor", ChainTip(2, entries[1].hash), WRONG_KEY))
    assert _found(audit.verify_chain(store)) == [(1, Damage.DELETED), (2, Damage.FORGED_CHECKPOINT)]


# -- the key --------------------------------------------------------------------------------------


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    for name in ("MONGODB_URI", "FAIRWATCH_BACKEND", "FAIRWATCH_SEED_DEMO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAIRWATCH_SECRETS_FILE", str(tmp_path / "none.toml"))
    config.get_settings.cache_clear()
    yield monkeypatch
    config.get_settings.cache_clear()


@pytest.mark.parametrize("production", [{"FAIRWATCH_SEED_DEMO": "false"},
                                        {"MONGODB_URI": "mongodb://db.example:27017"}])
def test_a_missing_key_outside_demo_mode_stops_start_up(settings_env, capsys, production):
    settings_env.delenv("FAIRWATCH_AUDIT_KEY")
    for name, value in production.items():
        settings_env.setenv(name, value)
    with pytest.raises(ConfigError, match="FAIRWATCH_AUDIT_KEY is not set"):
        config.load_settings()
    assert main(["status"]) == 2
    assert "FAIRWATCH_AUDIT_KEY is not set" in capsys.readouterr().err


def test_a_bad_key_is_refused_without_being_echoed(settings_env):
    settings_env.setenv("FAIRWATCH_AUDIT_KEY", "hunter2")
    with pytest.raises(ConfigError, match="FAIRWATCH_AUDIT_KEY") as caught:
        config.load_settings()
    assert "hunter2" not in str(caught.value)
    settings_env.setenv("FAIRWATCH_AUDIT_KEY", "a-long-enough-secret-value")
    assert "a-long-enough" not in repr(config.load_settings())


def test_demo_mode_uses_the_labelled_demo_key(settings_env, capsys):
    settings_env.delenv("FAIRWATCH_AUDIT_KEY")
    key = AuditKey.from_settings(config.load_settings())
    assert key.demo and key.secret == audit.DEMO_KEY
    assert main(["status"]) == 0
    assert "audit signing key: DEMO key" in capsys.readouterr().out
    store = SqliteStore(config.load_settings().database_path)
    store.ensure_schema()
    _record(store, 2)  # signed with the demo key (the settings have none)
    store.close()
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "signing key: DEMO key" in out and "audit chain intact: 2 entries" in out


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_store(settings_env):
    store = SqliteStore(config.load_settings().database_path)
    store.ensure_schema()
    yield store
    store.close()


def test_audit_verify_exits_zero_when_intact_and_names_the_first_bad_entry(cli_store, capsys):
    _record(cli_store, 5)
    assert main(["audit", "verify"]) == 0
    assert "audit chain intact: 5 entries (seq 1..5)" in capsys.readouterr().out
    _edit(cli_store, 4, {"i": 7})
    _delete(cli_store, 2)
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "first bad entry 2 (deleted)" in out and "[modified] entry 4" in out
    assert main(["verify-audit"]) == 1  # the older name
    assert "first bad entry 2 (deleted)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_round_trips_and_is_audited(store, fmt):
    audit.record(store, AuditEvent.BASELINE_CREATED, ANA, target={"model_id": "loan", "snapshot_id": "S-1"},
                 details={"note": "a, \"quoted\"\nline", "nested": {"x": [1, 2.5, None]}, "empty": ""})
    audit.record(store, AuditEvent.MODEL_REGISTERED, SYSTEM, details={"flag": True})
    stored = list(reversed(store.audit.list()))
    out = io.StringIO()
    report = audit.export(store, out, fmt, actor=ANA)
    assert report.entries == 2 and report.damaged == []
    back = audit.read_export(out.getvalue(), fmt)
    assert back == stored
    assert all(audit.entry_hash(e) == e.hash for e in back)
    last = store.audit.last()
    assert last.event_type == AuditEvent.AUDIT_EXPORTED and last.details["format"] == fmt
    assert last.actor.user_id == "ana" and audit.verify_chain(store).valid


def test_cli_export_since_to_a_file_and_to_stdout(cli_store, tmp_path, capsys):
    with clock.frozen(T0) as advance:
        _record(cli_store, 2)
        advance(timedelta(days=3))
        _record(cli_store, 2)
    target = tmp_path / "audit.csv"
    assert main(["audit", "export", "--format", "csv", "--since", "2020-01-02", "--output", str(target)]) == 0
    assert [e.seq for e in audit.read_export(target.read_text(), "csv")] == [3, 4]
    assert "exported 2 entries" in capsys.readouterr().err
    assert main(["audit", "export", "--format", "json"]) == 0
    assert [e.seq for e in audit.read_export(capsys.readouterr().out, "json")] == [1, 2, 3, 4, 5]
    assert cli_store.audit.last().event_type == AuditEvent.AUDIT_EXPORTED
    with pytest.raises(SystemExit):
        main(["audit", "export", "--since", "yesterday"])
    assert "not an ISO date or time: 'yesterday'" in capsys.readouterr().err
