"""The prediction logger a model service calls once per prediction.

    from monitoring_core.ingest import PredictionLogger

    logger = PredictionLogger(store)            # or PredictionLogger.from_settings()
    logger.log(model_id="loan-approval", model_version="2.3.0",
               features={"income": 52_000, "purpose": "car"},
               prediction="approve", confidence=0.87,
               probabilities={"approve": 0.87, "reject": 0.13},
               protected_attributes={"gender": "female"})

``log`` validates the record and queues it; it never waits for the database and never
raises into the serving path (``strict=True`` makes invalid records raise instead). A
background thread writes a batch every ``batch_size`` records or ``flush_interval``
seconds, whichever comes first; a failed batch is retried with exponential backoff; the
queue is bounded and what overflows is counted and reported, never dropped silently;
``close`` (also run at interpreter exit) flushes what is left.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .. import clock
from ..errors import InvalidInput, StoreUnavailable
from ..models.predictions import PredictionLog
from ..storage.base import describe_validation_error

log = logging.getLogger(__name__)

# Once a backlog has built up (the store was down), catch up in writes of this size.
CATCH_UP_BATCH = 5_000
# An unavailable store is waited for indefinitely; any other failure is a bug, retried a
# few times in case it is transient, then reported and counted rather than retried forever.
UNEXPECTED_FAILURE_ATTEMPTS = 3


@dataclass(frozen=True)
class LoggerStats:
    """Counters since the logger started. For accepted records ``logged == written +
    duplicates + rejected_by_store + dropped_on_error + dropped_on_close + pending``:
    nothing leaves without being counted."""

    logged: int = 0  # accepted into the queue
    written: int = 0
    duplicates: int = 0  # already stored (a retried batch that had in fact been written)
    rejected_invalid: int = 0  # refused by validation in log()
    dropped_overflow: int = 0  # refused because the queue was full
    rejected_by_store: int = 0  # the store refused the batch as invalid
    dropped_on_error: int = 0  # an unexpected error persisted (logged with its traceback)
    dropped_on_close: int = 0  # still queued when close() gave up
    failed_writes: int = 0  # write attempts that failed (each is retried)
    pending: int = 0
    last_error: str | None = None


class PredictionLogger:
    def __init__(self, store, *, batch_size: int = 10, flush_interval: float = 5.0, max_buffer: int = 100_000,
                 backoff_initial: float = 0.5, backoff_max: float = 60.0, strict: bool = False):
        if batch_size < 1 or flush_interval <= 0 or max_buffer < 1:
            raise InvalidInput("batch_size and max_buffer must be at least 1 and flush_interval positive")
        self.store = store
        self.batch_size, self.flush_interval, self.max_buffer = batch_size, flush_interval, max_buffer
        self.backoff_initial, self.backoff_max, self.strict = backoff_initial, backoff_max, strict
        self._queue: collections.deque[PredictionLog] = collections.deque()
        self._lock = threading.Condition()
        self._stats = LoggerStats()
        self._closing = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="fairwatch-prediction-logger", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @classmethod
    def from_settings(cls, store=None, settings=None, **overrides) -> PredictionLogger:
        """A logger configured by ``FAIRWATCH_SDK_*`` settings on the configured store."""
        from ..config import get_settings
        from ..storage import open_store

        settings = settings or get_settings()
        options = {"batch_size": settings.sdk_batch_size, "flush_interval": settings.sdk_flush_interval_s,
                   "max_buffer": settings.sdk_max_buffer, **overrides}
        return cls(store or open_store(settings), **options)

    # -- the caller's side ---------------------------------------------------------------

    def log(self, *, model_id: str, model_version: str, features: dict[str, Any], prediction: str,
            confidence: float, probabilities: dict[str, float] | None = None,
            protected_attributes: dict[str, str] | None = None, prediction_id: str | None = None,
            timestamp: datetime | None = None, user_id: str | None = None, session_id: str | None = None,
            api_version: str | None = None, latency_ms: float | None = None,
            explanation: dict[str, float] | None = None) -> str | None:
        """Queue one prediction; returns its ``prediction_id`` (None if it was refused)."""
        document = {
            "model_id": model_id, "model_version": model_version, "timestamp": timestamp or clock.now(),
            "features": features,
            "prediction": {"class": prediction, "confidence": confidence, "probabilities": probabilities},
            "metadata": {"user_id": user_id, "session_id": session_id, "api_version": api_version,
                         "latency_ms": latency_ms, "protected_attributes": protected_attributes or {}},
            "explanation": explanation,
        }
        if prediction_id is not None:
            document["prediction_id"] = prediction_id
        try:
            record = PredictionLog.model_validate(document)
        except ValidationError as exc:
            message = describe_validation_error("prediction", exc)
            self._count(rejected_invalid=1, last_error=message)
            if self.strict:
                raise InvalidInput(message) from None
            log.warning("Fairwatch refused a prediction of %s: %s", model_id, message)
            return None
        return record.prediction_id if self.log_record(record) else None

    def log_record(self, record: PredictionLog) -> bool:
        """Queue an already-built document; False if the queue was full (counted)."""
        with self._lock:
            if self._closing:
                raise InvalidInput("this PredictionLogger is closed")
            if len(self._queue) >= self.max_buffer:
                self._stats = replace(self._stats, dropped_overflow=self._stats.dropped_overflow + 1,
                                      last_error="queue full: the store is not keeping up or is unreachable")
                dropped = self._stats.dropped_overflow
                if dropped == 1 or dropped % 1000 == 0:
                    log.error("Fairwatch prediction queue is full (%d); %d predictions dropped so far",
                              self.max_buffer, dropped)
                return False
            self._queue.append(record)
            self._stats = replace(self._stats, logged=self._stats.logged + 1)
            if len(self._queue) >= self.batch_size:
                self._lock.notify_all()
        return True

    def is_frozen(self, model_id: str) -> bool:
        """Whether the model is frozen after a CRITICAL fairness incident (policy 2.2): serving
        should then route its predictions to manual review (policy 3.3). Reads the store."""
        from ..incidents import is_frozen

        return is_frozen(self.store, model_id)

    @property
    def stats(self) -> LoggerStats:
        with self._lock:
            return replace(self._stats, pending=len(self._queue) + self._in_flight)

    def flush(self, timeout: float | None = None) -> bool:
        """Ask for an immediate write and wait until everything queued is stored."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining if remaining is not None else 0.5)
                self._flush_requested = True
                self._lock.notify_all()
        return True

    def close(self, timeout: float = 10.0) -> LoggerStats:
        """Flush, stop the writer thread and report what could not be written."""
        with self._lock:
            if self._closing:
                return self.stats
        flushed = self.flush(timeout)
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._thread.join(timeout=max(1.0, timeout))
        with self._lock:
            if not flushed and self._queue:
                lost = len(self._queue)
                self._queue.clear()
                self._stats = replace(self._stats, dropped_on_close=self._stats.dropped_on_close + lost)
                log.error("Fairwatch could not store %d predictions before shutdown: %s", lost, self._stats.last_error)
        atexit.unregister(self.close)
        return self.stats

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------

    _flush_requested = False

    def _count(self, **changes) -> None:
        with self._lock:
            updates = {k: (getattr(self._stats, k) + v if isinstance(v, int) and k != "last_error" else v)
                       for k, v in changes.items()}
            self._stats = replace(self._stats, **updates)

    def _next_batch(self) -> list[PredictionLog] | None:
        """Wait for a full batch, the interval, a flush request or closing."""
        with self._lock:
            deadline = time.monotonic() + self.flush_interval
            while not self._closing:
                if len(self._queue) >= self.batch_size or self._flush_requested:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            self._flush_requested = False
            if self._closing:  # close() has flushed already; it reports what is left
                return None
            if not self._queue:
                return []
            size = self.batch_size if len(self._queue) <= self.batch_size else min(len(self._queue), CATCH_UP_BATCH)
            batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._write_with_retry(batch)

    def _write_with_retry(self, batch: list[PredictionLog]) -> None:
        delay, unexpected = self.backoff_initial, 0
        while True:
            try:
                report = self.store.predictions.insert_many(batch)
            except InvalidInput as exc:  # the data itself is wrong: retrying cannot help
                self._finish(batch, rejected=len(batch), error=str(exc))
                log.error("Fairwatch refused a batch of %d predictions: %s", len(batch), exc)
                return
            except Exception as exc:  # noqa: BLE001 - classified below, never lost silently
                if not isinstance(exc, (StoreUnavailable, ConnectionError, TimeoutError)):
                    unexpected += 1
                    if unexpected >= UNEXPECTED_FAILURE_ATTEMPTS:
                        log.exception("Fairwatch dropped %d predictions after %d failed writes", len(batch),
                                      unexpected)
                        self._finish(batch, failed=len(batch), error=f"{type(exc).__name__}: {exc}")
                        return
                self._count(failed_writes=1, last_error=f"{type(exc).__name__}: {exc}")
                log.warning("Fairwatch could not write %d predictions (%s); retrying in %.1f s",
                            len(batch), exc, delay)
                with self._lock:
                    if self._closing:
                        self._queue.extendleft(reversed(batch))
                        self._in_flight = 0
                        self._lock.notify_all()
                        return
                    self._lock.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            self._finish(batch, written=report.inserted, duplicates=len(report.duplicate_ids))
            return

    def _finish(self, batch, *, written: int = 0, duplicates: int = 0, rejected: int = 0, failed: int = 0,
                error: str | None = None) -> None:
        with self._lock:
            self._stats = replace(self._stats, written=self._stats.written + written,
                                  duplicates=self._stats.duplicates + duplicates,
                                  rejected_by_store=self._stats.rejected_by_store + rejected,
                                  dropped_on_error=self._stats.dropped_on_error + failed,
                                  last_error=error or self._stats.last_error)
            self._in_flight = 0
            self._lock.notify_all()
