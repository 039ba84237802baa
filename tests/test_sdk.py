"""The prediction logger against a real embedded store: batching, retry, overflow, close."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitoring_core.errors import InvalidInput
from monitoring_core.ingest import PredictionLogger
from monitoring_core.models import columns as col
from monitoring_core.storage.sqlite import SqliteStore

from .factories import NOW


def log_one(logger, i, **extra):
    return logger.log(model_id="loan", model_version="1", features={"income": 1000.0 + i, "purpose": "car"},
                      prediction="approve", confidence=0.9, probabilities={"approve": 0.9, "reject": 0.1},
                      protected_attributes={"gender": "female"}, timestamp=NOW + timedelta(seconds=i), **extra)


def locked_pair(tmp_path, busy_timeout_ms):
    """A store, and another connection to its file (another process) that can take its write lock."""
    holder = SqliteStore(tmp_path / "fw.db")
    holder.ensure_schema()
    return holder, SqliteStore(tmp_path / "fw.db", busy_timeout_ms=busy_timeout_ms)


@contextlib.contextmanager
def write_lock(holder):
    with holder.transaction():
        holder.db.connection().execute("DELETE FROM prediction_logs WHERE 0")
        yield


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_full_batch_is_written_without_waiting_for_the_interval(embedded):
    logger = PredictionLogger(embedded, batch_size=10, flush_interval=3600)
    ids = [log_one(logger, i) for i in range(10)]
    # The stats are updated just after the write returns, so wait for them rather than the rows.
    assert wait_for(lambda: logger.stats.written == 10)
    assert embedded.predictions.count("loan") == 10 and logger.stats.pending == 0
    found = embedded.predictions.find(ids[3])
    assert found.features["income"] == 1003.0 and found.metadata.protected_attributes == {"gender": "female"}
    logger.close()


def test_a_partial_batch_is_written_after_the_interval(embedded):
    logger = PredictionLogger(embedded, batch_size=10, flush_interval=0.2)
    for i in range(3):
        log_one(logger, i)
    assert embedded.predictions.count("loan") == 0 or logger.stats.written == 3
    assert wait_for(lambda: embedded.predictions.count("loan") == 3)
    logger.close()


def test_close_flushes_what_is_queued(embedded):
    logger = PredictionLogger(embedded, batch_size=1000, flush_interval=3600)
    for i in range(25):
        log_one(logger, i)
    stats = logger.close()
    assert stats.written == 25 and stats.pending == 0 and stats.dropped_on_close == 0
    assert embedded.predictions.count("loan") == 25
    with pytest.raises(InvalidInput, match="closed"):
        log_one(logger, 99)


def test_invalid_predictions_are_counted_not_raised(embedded):
    logger = PredictionLogger(embedded, batch_size=1, flush_interval=0.1)
    assert logger.log(model_id="loan", model_version="1", features={"income": float("inf")},
                      prediction="approve", confidence=0.9) is None
    assert logger.log(model_id="loan", model_version="1", features={"income": 1.0},
                      prediction="approve", confidence=1.7) is None
    stats = logger.close()
    assert stats.rejected_invalid == 2 and "confidence" in stats.last_error
    strict = PredictionLogger(embedded, strict=True)
    with pytest.raises(InvalidInput, match="infinite"):
        strict.log(model_id="loan", model_version="1", features={"income": float("inf")},
                   prediction="approve", confidence=0.9)
    strict.close()


def test_a_locked_store_is_retried_until_it_frees_and_logging_never_blocks(tmp_path):
    holder, store = locked_pair(tmp_path, busy_timeout_ms=50)
    logger = PredictionLogger(store, batch_size=5, flush_interval=0.05, backoff_initial=0.05, backoff_max=0.1)
    release = threading.Event()
    locked = threading.Event()

    def hold_the_lock():
        with write_lock(holder):
            locked.set()
            release.wait(10)

    holding = threading.Thread(target=hold_the_lock)
    holding.start()
    assert locked.wait(5)
    for i in range(20):  # returns immediately although every write fails for now
        assert log_one(logger, i) is not None
    assert wait_for(lambda: logger.stats.failed_writes >= 2)
    assert logger.stats.written == 0 and logger.stats.pending == 20
    release.set()
    holding.join()
    assert logger.flush(timeout=10)
    stats = logger.close()
    assert stats.written == 20 and stats.dropped_overflow == 0
    assert store.predictions.count("loan") == 20
    assert "locked" in stats.last_error


def test_overflow_is_counted_and_reported(tmp_path, caplog):
    holder, store = locked_pair(tmp_path, busy_timeout_ms=20)
    logger = PredictionLogger(store, batch_size=100, flush_interval=0.05, max_buffer=5, backoff_initial=0.05)
    with write_lock(holder):
        results = [log_one(logger, i) for i in range(12)]
    assert sum(r is None for r in results) == 7
    assert logger.stats.dropped_overflow == 7
    assert "queue is full" in caplog.text
    stats = logger.close()
    assert stats.written == 5 and store.predictions.count("loan") == 5
    assert stats.logged == (stats.written + stats.duplicates + stats.rejected_by_store + stats.dropped_on_error
                            + stats.dropped_on_close + stats.pending)


def test_close_reports_what_could_not_be_written(tmp_path):
    holder, store = locked_pair(tmp_path, busy_timeout_ms=20)
    logger = PredictionLogger(store, batch_size=2, flush_interval=0.05, backoff_initial=0.05)
    with write_lock(holder):
        for i in range(4):
            log_one(logger, i)
        stats = logger.close(timeout=0.3)
    assert stats.dropped_on_close == 4 and stats.written == 0 and stats.pending == 0


def test_explicit_ids_make_retries_idempotent(embedded):
    logger = PredictionLogger(embedded, batch_size=1, flush_interval=0.05)
    log_one(logger, 1, prediction_id="fixed-1")
    assert wait_for(lambda: logger.stats.written == 1)
    log_one(logger, 1, prediction_id="fixed-1")
    assert wait_for(lambda: logger.stats.duplicates == 1)
    logger.close()
    window = embedded.predictions.window("loan", NOW, NOW + timedelta(minutes=1), [col.PREDICTION_ID])
    assert window[col.PREDICTION_ID].tolist() == ["fixed-1"]


def test_an_unexpected_error_is_reported_not_retried_forever(embedded, caplog):
    class Broken:
        """A store whose writes hit a bug (not an outage)."""

        def __init__(self, real):
            self.predictions = self
            self.real = real

        def insert_many(self, logs):
            raise TypeError("a bug in the writer")

    logger = PredictionLogger(Broken(embedded), batch_size=2, flush_interval=0.05, backoff_initial=0.01)
    log_one(logger, 1)
    log_one(logger, 2)
    assert logger.flush(timeout=10)
    stats = logger.close()
    assert stats.dropped_on_error == 2 and stats.failed_writes == 2 and "a bug in the writer" in stats.last_error
    assert "dropped 2 predictions after 3 failed writes" in caplog.text
    assert stats.logged == stats.written + stats.dropped_on_error + stats.pending


def test_new_predictions_do_not_cut_the_backoff_short(tmp_path):
    holder, store = locked_pair(tmp_path, busy_timeout_ms=10)
    logger = PredictionLogger(store, batch_size=1, flush_interval=0.01, backoff_initial=0.5, backoff_max=60)
    with write_lock(holder):
        for i in range(100):  # each one asks the writer for a batch: none may force a retry
            log_one(logger, i)
            time.sleep(0.01)
        failed = logger.stats.failed_writes
    # Over about 1.1 s with waits of 0.5 s then 1 s: the first attempt and one retry.
    assert 1 <= failed <= 2
    stats = logger.close(timeout=5)
    assert stats.written == 100 and store.predictions.count("loan") == 100


def test_close_during_a_lock_counts_the_batch_being_written(tmp_path):
    holder, store = locked_pair(tmp_path, busy_timeout_ms=1500)  # the first write is still waiting when close() gives up
    logger = PredictionLogger(store, batch_size=10, flush_interval=3600, backoff_initial=0.05)
    lock = write_lock(holder)
    lock.__enter__()  # held across close()
    for i in range(50):
        log_one(logger, i)
    time.sleep(0.2)
    stats = logger.close(timeout=0.3)
    assert stats.dropped_on_close == 50 and stats.pending == 0 and stats.written == 0
    assert stats.logged == stats.written + stats.dropped_on_close + stats.pending
    lock.__exit__(None, None, None)
    logger._thread.join(5)
    # Whatever became of the batch caught mid-write, it is counted once.
    late = logger.stats
    assert late.written + late.dropped_on_close == 50 and store.predictions.count("loan") == late.written


FAULT_SCENARIO = r'''
import functools, json, os, pwd, resource, signal, sys, tempfile, time
from datetime import UTC, datetime, timedelta
from monitoring_core.ingest import PredictionLogger
from monitoring_core.storage.sqlite import SqliteStore

scenario = sys.argv[1]
folder = tempfile.mkdtemp()
path = os.path.join(folder, "fw.db")
setup = SqliteStore(path)
setup.ensure_schema()
if os.getuid() == 0:  # permissions mean nothing to root: become an ordinary user
    nobody = pwd.getpwnam("nobody")
    for name in ["", *os.listdir(folder)]:
        os.chown(os.path.join(folder, name), nobody.pw_uid, nobody.pw_gid)
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
if scenario == "read-only":
    setup.close()
    os.chmod(path, 0o444)
else:  # "disk full": no file may grow beyond what it holds now
    setup.predictions.count("loan")  # keeps the WAL and its index open at their present size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
logger = PredictionLogger(functools.partial(SqliteStore, path), batch_size=5, flush_interval=0.05,
                          backoff_initial=0.05, backoff_max=0.2)
start = datetime.now(UTC)
for i in range(20):
    logger.log(model_id="loan", model_version="1", features={"income": float(i)}, prediction="approve",
               confidence=0.9, timestamp=start + timedelta(seconds=i))
deadline = time.monotonic() + 10
while logger.stats.failed_writes < 3 and time.monotonic() < deadline:
    time.sleep(0.02)
failed_before = logger.stats.failed_writes
if scenario == "read-only":  # SQLite gave its -wal and -shm files the database's mode: all become writable
    for name in os.listdir(folder):
        os.chmod(os.path.join(folder, name), 0o644)
else:
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
flushed = logger.flush(timeout=10)
stats = logger.close()
print(json.dumps({"uid": os.getuid(), "failed_before": failed_before, "flushed": flushed, "written": stats.written,
                  "last_error": stats.last_error, "stored": SqliteStore(path).predictions.count("loan")}))
'''


@pytest.mark.parametrize(("scenario", "error"), [("read-only", "read-only"), ("disk full", "disk")])
def test_the_logger_recovers_once_the_store_is_usable_again(scenario, error):
    """Run as an ordinary user in a child process: root ignores file permissions, and a
    file-size limit must not reach the test runner."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", FAULT_SCENARIO, scenario], check=False, cwd=root, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["uid"] != 0
    assert result["failed_before"] >= 3 and error in result["last_error"]
    assert result["flushed"] and result["written"] == 20 and result["stored"] == 20


def test_model_ids_and_versions_follow_the_bulk_rule(embedded):
    logger = PredictionLogger(embedded, batch_size=1, flush_interval=0.05)
    for model_id, version in (("", "1"), ("   ", "1"), ("loan", "")):
        assert logger.log(model_id=model_id, model_version=version, features={"income": 1.0}, prediction="approve",
                          confidence=0.9) is None
    kept = logger.log(model_id=" loan ", model_version=" 1 ", features={"income": 1.0}, prediction="approve",
                      confidence=0.9, timestamp=NOW)
    stats = logger.close()
    assert stats.rejected_invalid == 3 and "must not be empty" in stats.last_error and stats.written == 1
    found = embedded.predictions.find(kept)
    assert (found.model_id, found.model_version) == ("loan", "1")


def test_from_settings_opens_its_own_store_in_the_writer_thread(tmp_path, monkeypatch):
    from monitoring_core.config import load_settings

    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("FAIRWATCH_DATA_DIR", str(tmp_path / "data"))
    logger = PredictionLogger.from_settings(settings=load_settings(), batch_size=1, flush_interval=0.05)
    log_one(logger, 1)
    assert logger.flush(timeout=10) and logger.store is not None
    assert logger.close().written == 1
    reader = SqliteStore(tmp_path / "data" / "fairwatch.db")
    assert reader.predictions.count("loan") == 1
    reader.close()
