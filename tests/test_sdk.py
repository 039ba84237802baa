"""The prediction logger against a real embedded store: batching, retry, overflow, close."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from monitoring_core.errors import InvalidInput
from monitoring_core.ingest import PredictionLogger
from monitoring_core.models import columns as col
from monitoring_core.storage.sqlite import SqliteStore

from .factories import NOW


@pytest.fixture
def embedded(tmp_path):
    store = SqliteStore(tmp_path / "fw.db")
    store.ensure_schema()
    yield store
    store.close()


def log_one(logger, i, **extra):
    return logger.log(model_id="loan", model_version="1", features={"income": 1000.0 + i, "purpose": "car"},
                      prediction="approve", confidence=0.9, probabilities={"approve": 0.9, "reject": 0.1},
                      protected_attributes={"gender": "female"}, timestamp=NOW + timedelta(seconds=i), **extra)


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
    assert wait_for(lambda: embedded.predictions.count("loan") == 10)
    assert logger.stats.written == 10 and logger.stats.pending == 0
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
    path = tmp_path / "fw.db"
    holder = SqliteStore(path)
    holder.ensure_schema()
    store = SqliteStore(path, busy_timeout_ms=50)
    logger = PredictionLogger(store, batch_size=5, flush_interval=0.05, backoff_initial=0.05, backoff_max=0.1)
    release = threading.Event()
    locked = threading.Event()

    def hold_the_lock():
        with holder.transaction():
            holder.db.connection().execute("DELETE FROM prediction_logs WHERE 0")
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
    path = tmp_path / "fw.db"
    holder = SqliteStore(path)
    holder.ensure_schema()
    store = SqliteStore(path, busy_timeout_ms=20)
    logger = PredictionLogger(store, batch_size=100, flush_interval=0.05, max_buffer=5, backoff_initial=0.05)
    with holder.transaction():
        holder.db.connection().execute("DELETE FROM prediction_logs WHERE 0")
        results = [log_one(logger, i) for i in range(12)]
    assert sum(r is None for r in results) == 7
    assert logger.stats.dropped_overflow == 7
    assert "queue is full" in caplog.text
    stats = logger.close()
    assert stats.written == 5 and store.predictions.count("loan") == 5
    assert stats.logged == (stats.written + stats.duplicates + stats.rejected_by_store + stats.dropped_on_error
                            + stats.dropped_on_close + stats.pending)


def test_close_reports_what_could_not_be_written(tmp_path):
    path = tmp_path / "fw.db"
    holder = SqliteStore(path)
    holder.ensure_schema()
    store = SqliteStore(path, busy_timeout_ms=20)
    logger = PredictionLogger(store, batch_size=2, flush_interval=0.05, backoff_initial=0.05)
    with holder.transaction():
        holder.db.connection().execute("DELETE FROM prediction_logs WHERE 0")
        for i in range(4):
            log_one(logger, i)
        stats = logger.close(timeout=0.3)
    assert stats.dropped_on_close + stats.written == 4 and stats.dropped_on_close > 0


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
