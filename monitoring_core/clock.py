"""The one source of "now" in Fairwatch.

Everything that needs the current time (dedup windows, SLA figures, leases, schedules,
retention) calls :func:`now`, so tests can move time with :func:`frozen` instead of
sleeping.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_source: Callable[[], datetime] = lambda: datetime.now(UTC)
_thread = threading.local()


def now() -> datetime:
    """Current time, timezone-aware UTC, truncated to milliseconds (MongoDB's precision)."""
    current = getattr(_thread, "at", None) or _source()
    return current.replace(microsecond=current.microsecond - current.microsecond % 1000)


@contextlib.contextmanager
def replaying(at: datetime) -> Iterator[None]:
    """:func:`now` reads ``at`` in this thread only, while other threads keep the real time:
    for replaying history as it would have happened (the demo's daily runs at their slots)
    in a process that is serving users meanwhile. Not for tests: use :func:`frozen`."""
    if at.tzinfo is None:
        raise ValueError("replaying() needs a timezone-aware datetime")
    previous, _thread.at = getattr(_thread, "at", None), at.astimezone(UTC)
    try:
        yield
    finally:
        _thread.at = previous


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[Callable[[timedelta], None]]:
    """Freeze :func:`now` at ``at``; yields ``advance(delta)`` to move the frozen time."""
    global _source
    if at.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    state = {"at": at.astimezone(UTC)}

    def advance(delta: timedelta) -> None:
        state["at"] += delta

    with _lock:
        previous, _source = _source, lambda: state["at"]
    try:
        yield advance
    finally:
        with _lock:
            _source = previous
