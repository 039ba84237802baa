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
seconds, whichever comes first. A failed batch is retried with exponential backoff (new
predictions never cut the wait short) on a freshly opened store when the logger was given
a way to open one (``from_settings`` does), so a store that was read-only, full, locked or
unreachable is written to again once it is usable. The queue is bounded and what
overflows is counted and reported, never dropped silently; ``close`` (also run at
interpreter exit) writes what it can in the time it is given and reports every prediction
it could not store, including a batch caught mid-write.
"""

from __future__ import annotations

import atexit
import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Self

from pydantic import ValidationError

from .. import clock
from ..errors import InvalidInput, StoreDamaged, StoreUnavailable
from ..models.predictions import PredictionLog
from ..storage.base import describe_validation_error

log = logging.getLogger(__name__)

# Once a backlog has built up (the store was down), catch up in writes of this size.
CATCH_UP_BATCH = 5_000
# An unavailable store is waited for indefinitely; any other failure is a bug, retried a
# few times in case it is transient, then reported and counted rather than retried forever.
UNEXPECTED_FAILURE_ATTEMPTS = 3
# Faults of the store itself (full, read-only, locked, unreachable, damaged): wait for it.
STORE_FAULTS = (StoreUnavailable, StoreDamaged, ConnectionError, TimeoutError)


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
    """Queue predictions and write them in the background.

    Parameters
    ----------
    store : Store or callable
        The store to write to, or a function that opens one (such as
        ``functools.partial(open_store, settings)``). With a function the logger opens its
        own store in its writer thread and opens a fresh one after every failed write, so
        it recovers from faults that stick to a connection (a file that was read-only when
        first opened, a disk that was full); with a store it retries on that store.
    """

    def __init__(self, store, *, batch_size: int = 10, flush_interval: float = 5.0, max_buffer: int = 100_000,
                 backoff_initial: float = 0.5, backoff_max: float = 60.0, strict: bool = False):
        if batch_size < 1 or flush_interval <= 0 or max_buffer < 1:
            raise InvalidInput("batch_size and max_buffer must be at least 1 and flush_interval positive")
        self._open: Callable[[], Any] | None = store if callable(store) else None
        self._store = None if callable(store) else store
        self.batch_size, self.flush_interval, self.max_buffer = batch_size, flush_interval, max_buffer
        self.backoff_initial, self.backoff_max, self.strict = backoff_initial, backoff_max, strict
        self._queue: collections.deque[PredictionLog] = collections.deque()
        self._lock = threading.Condition()
        self._stats = LoggerStats()
        self._closing = False  # close() has begun: no new predictions, write what is left
        self._closed = False  # close() has counted what is left as dropped
        self._close_deadline = float("inf")
        self._flush_requested = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="fairwatch-prediction-logger", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @classmethod
    def from_settings(cls, store=None, settings=None, **overrides) -> PredictionLogger:
        """A logger configured by ``FAIRWATCH_SDK_*`` settings that opens (and after a
        fault reopens) the configured store."""
        from ..config import get_settings
        from ..storage import open_store

        settings = settings or get_settings()
        options = {"batch_size": settings.sdk_batch_size, "flush_interval": settings.sdk_flush_interval_s,
                   "max_buffer": settings.sdk_max_buffer, **overrides}
        return cls(store or functools.partial(open_store, settings), **options)

    @property
    def store(self):
        """The store the writer thread uses now (None until it has opened one)."""
        return self._store

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
            return replace(self._stats, pending=self._pending())

    def _pending(self) -> int:
        # After close() a batch still being written is counted as dropped_on_close.
        return len(self._queue) + (0 if self._closed else self._in_flight)

    def flush(self, timeout: float | None = None) -> bool:
        """Ask for an immediate write and wait until everything queued is stored.

        A write that failed is retried when its backoff ends, not sooner."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._queue or self._in_flight:
                self._flush_requested = True
                self._lock.notify_all()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining if remaining is not None else 0.5)
        return True

    def close(self, timeout: float = 10.0) -> LoggerStats:
        """Write what is queued within ``timeout`` seconds, stop the writer thread and
        report every prediction that could not be stored (``dropped_on_close``)."""
        with self._lock:
            if self._closing:
                return replace(self._stats, pending=self._pending())
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            self._lock.notify_all()
        self._thread.join(timeout=max(0.0, self._close_deadline - time.monotonic()) + 0.1)
        with self._lock:
            in_flight = self._in_flight if self._thread.is_alive() else 0
            lost = len(self._queue) + in_flight
            self._queue.clear()
            self._closed = True
            if lost:
                self._stats = replace(self._stats, dropped_on_close=self._stats.dropped_on_close + lost)
                log.error("Fairwatch could not store %d predictions before shutdown (%d of them in a write that "
                          "had not finished): %s", lost, in_flight, self._stats.last_error)
            stats = replace(self._stats, pending=self._pending())
        atexit.unregister(self.close)
        return stats

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------

    def _count(self, **changes) -> None:
        with self._lock:
            updates = {k: (getattr(self._stats, k) + v if isinstance(v, int) and k != "last_error" else v)
                       for k, v in changes.items()}
            self._stats = replace(self._stats, **updates)

    def _next_batch(self) -> list[PredictionLog] | None:
        """Wait for a full batch, the interval, a flush request or closing; None when
        there is nothing more to write."""
        with self._lock:
            deadline = time.monotonic() + self.flush_interval
            while not self._closing and len(self._queue) < self.batch_size and not self._flush_requested:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            self._flush_requested = False
            if self._closing and (not self._queue or time.monotonic() >= self._close_deadline):
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
                break
            if batch:
                self._write_with_retry(batch)
        if self._open is not None and self._store is not None:
            self._store.close()

    def _writer_store(self):
        if self._store is None:
            self._store = self._open()
        return self._store

    def _write_with_retry(self, batch: list[PredictionLog]) -> None:
        delay, unexpected = self.backoff_initial, 0
        while True:
            try:
                report = self._writer_store().predictions.insert_many(batch)
            except InvalidInput as exc:  # the data itself is wrong: retrying cannot help
                self._finish(batch, rejected=len(batch), error=str(exc))
                log.error("Fairwatch refused a batch of %d predictions: %s", len(batch), exc)
                return
            except STORE_FAULTS as exc:
                self._failed(batch, exc, delay)
            except Exception as exc:
                unexpected += 1
                if unexpected >= UNEXPECTED_FAILURE_ATTEMPTS:
                    log.exception("Fairwatch dropped %d predictions after %d failed writes", len(batch), unexpected)
                    self._finish(batch, failed=len(batch), error=f"{type(exc).__name__}: {exc}")
                    return
                self._failed(batch, exc, delay)
            else:
                self._finish(batch, written=report.inserted, duplicates=len(report.duplicate_ids))
                return
            if not self._back_off(delay):
                self._give_back(batch)
                return
            delay = min(delay * 2, self.backoff_max)

    def _failed(self, batch: list[PredictionLog], exc: Exception, delay: float) -> None:
        self._count(failed_writes=1, last_error=f"{type(exc).__name__}: {exc}")
        log.warning("Fairwatch could not write %d predictions (%s); retrying in %.1f s", len(batch), exc, delay)
        if self._open is not None and self._store is not None:
            # A connection opened while the store was read-only or full stays that way:
            # the next attempt starts from a freshly opened store.
            stale, self._store = self._store, None
            stale.close()

    def _back_off(self, delay: float) -> bool:
        """Wait ``delay`` seconds before the next attempt (new predictions do not cut the
        wait short); False when close() has run out of time."""
        with self._lock:
            closing_already = self._closing
            until = time.monotonic() + delay
            while True:
                now = time.monotonic()
                if self._closing:
                    if not closing_already:
                        return True  # shutting down: one last attempt now, the store may be back
                    if now >= self._close_deadline:
                        return False
                    until = min(until, self._close_deadline)
                if now >= until:
                    return True
                self._lock.wait(until - now)

    def _give_back(self, batch: list[PredictionLog]) -> None:
        with self._lock:
            if not self._closed:  # else close() has already counted it as dropped
                self._queue.extendleft(reversed(batch))
            self._in_flight = 0
            self._lock.notify_all()

    def _finish(self, batch, *, written: int = 0, duplicates: int = 0, rejected: int = 0, failed: int = 0,
                error: str | None = None) -> None:
        with self._lock:
            # A batch that close() gave up on but that completed after all is moved from
            # dropped_on_close to what really happened to it.
            recounted = len(batch) if self._closed and self._in_flight else 0
            self._stats = replace(self._stats, written=self._stats.written + written,
                                  duplicates=self._stats.duplicates + duplicates,
                                  rejected_by_store=self._stats.rejected_by_store + rejected,
                                  dropped_on_error=self._stats.dropped_on_error + failed,
                                  dropped_on_close=self._stats.dropped_on_close - recounted,
                                  last_error=error or self._stats.last_error)
            self._in_flight = 0
            self._lock.notify_all()
