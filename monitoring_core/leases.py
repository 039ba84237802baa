"""One at a time, across threads, processes and hosts: leases with an owner and an expiry.

The analysis (one run per model), the alert sender (one sender per delivery) and the
scheduler (one runner per job) all hold their work under :func:`held`::

    with leases.held(store, "job:daily-fairness", holder=LeaseHolder(started_by="system")):
        run_the_job()

A second caller gets :class:`LeaseHeld` (a :class:`~monitoring_core.errors.Conflict`)
naming who holds the lease and since when. A holder that crashes stops renewing, so its
lease expires after ``ttl`` and the next caller takes over: nobody waits forever. Work
that may outlast ``ttl`` passes ``renew_every`` and a background thread extends the lease
while it runs. Take a lease outside any :meth:`Store.transaction`: inside one, the
embedded store would only show it to other processes at commit.

The storage rules are :class:`monitoring_core.storage.repositories.Leases`; time comes from
:mod:`monitoring_core.clock`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from . import clock
from .errors import InvalidInput, StoreUnavailable
from .models.lease import Lease, LeaseHolder, new_owner
from .storage.repositories import LeaseHeld, LeaseLost, positive_ttl

__all__ = ["ANALYSIS_RENEW_EVERY", "ANALYSIS_TTL", "DEFAULT_TTL", "HeldLease", "LeaseHeld", "LeaseHolder", "LeaseLost",
           "analysis", "analysis_in_progress", "analysis_key", "held"]

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(minutes=15)
#: An analysis may take up to 10 minutes (policy); a crashed one blocks the next for at
#: most ANALYSIS_TTL, and a long one keeps its lease by renewing.
ANALYSIS_TTL = timedelta(minutes=15)
ANALYSIS_RENEW_EVERY = timedelta(minutes=5)
ANALYSIS_PREFIX = "analysis:"


class HeldLease:
    """A lease this process holds, as :func:`held` yields it.

    ``lease`` is the stored document as of the last renewal; ``renewed`` is set after each
    renewal by the background thread (a caller may wait on it).
    """

    def __init__(self, store, lease: Lease, ttl: timedelta):
        self.store, self.lease, self.ttl = store, lease, ttl
        self.renewed = threading.Event()
        self._lost: LeaseLost | None = None
        self._bug: BaseException | None = None

    @property
    def key(self) -> str:
        return self.lease.key

    def renew(self) -> Lease:
        """Extend the lease to ``now + ttl``; ``LeaseLost`` if it is no longer ours."""
        try:
            self.lease = self.store.leases.renew(self.key, self.lease.owner, self.ttl, clock.now())
        except LeaseLost as exc:
            self._lost = exc
            raise
        self.renewed.set()
        return self.lease

    def check(self) -> None:
        """Raise ``LeaseLost`` if the renewer found the lease taken over. Call it before a
        step that must not overlap another holder's (writing the result, sending)."""
        if self._lost is not None:
            raise self._lost

    def _renew_every(self, every: timedelta, stop: threading.Event) -> None:
        while not stop.wait(every.total_seconds()):
            try:
                self.renew()
            except LeaseLost:
                return
            except StoreUnavailable as exc:
                # Transient: the lease lasts ttl, long enough for the next attempt.
                log.warning("could not renew the lease %r (expires at %s): %s", self.key, self.lease.expires_at, exc)
            except Exception as exc:  # a bug: handed to the caller's thread, which raises it
                self._bug = exc
                return

    def _release(self) -> BaseException | None:
        """Give the lease back; what went wrong, for the caller to raise or note."""
        if self._bug is not None:
            return self._bug
        try:
            released = self.store.leases.release(self.key, self.lease.owner)
        except LeaseLost as exc:
            return exc
        except StoreUnavailable as exc:
            # The work is done; the lease ends by itself at expires_at.
            log.warning("could not release the lease %r; it expires at %s: %s", self.key, self.lease.expires_at, exc)
            return self._lost
        # Gone without our release: it expired, was taken over and released by another.
        return self._lost or (None if released else LeaseLost(self.key, None))


@contextlib.contextmanager
def held(store, key: str, *, holder: LeaseHolder, ttl: timedelta = DEFAULT_TTL,
         renew_every: timedelta | None = None) -> Iterator[HeldLease]:
    """Hold the lease ``key`` while the body runs; release it at the end, even on errors.

    Parameters
    ----------
    store : Store
    key : str
        What is held, e.g. ``analysis:loan-approval`` (see :func:`analysis_key`).
    holder : LeaseHolder
        Who holds it (user id, host, pid, note), shown to whoever is refused.
    ttl : timedelta
        How long the lease lasts without renewal: how long a crashed holder blocks others.
    renew_every : timedelta, optional
        Renew in a background thread at this interval (shorter than ``ttl``), for work that
        may outlast ``ttl``. A renewal the store refuses for a moment is retried at the next
        interval.

    Yields
    ------
    HeldLease

    Raises
    ------
    LeaseHeld
        Someone else holds an unexpired lease on ``key`` (nothing ran).
    LeaseLost
        After a body that succeeded: the lease expired and was taken over meanwhile, so the
        work may have overlapped another holder's. After a body that failed, the loss is
        added as a note to the body's exception instead.
    """
    ttl = positive_ttl(ttl)
    if renew_every is not None and not timedelta(0) < renew_every < ttl:
        raise InvalidInput(f"renew_every must be positive and shorter than the ttl ({ttl}), got {renew_every}")
    handle = HeldLease(store, store.leases.acquire(key, new_owner(), ttl, holder, clock.now()), ttl)
    stop = threading.Event()
    renewer = None
    if renew_every is not None:
        renewer = threading.Thread(target=handle._renew_every, args=(renew_every, stop),
                                   name=f"fairwatch-lease-{key}", daemon=True)
        renewer.start()
    try:
        yield handle
    except BaseException as exc:
        problem = _stop(renewer, stop, handle)
        if problem is not None and problem is not exc:
            exc.add_note(f"Also, on releasing the lease: {problem}")
        raise
    problem = _stop(renewer, stop, handle)
    if problem is not None:
        raise problem


def _stop(renewer: threading.Thread | None, stop: threading.Event, handle: HeldLease) -> BaseException | None:
    stop.set()
    if renewer is not None:
        renewer.join()
    return handle._release()


def analysis_key(model_id: str) -> str:
    """The lease of ``model_id``'s analysis: one run per model at a time."""
    return f"{ANALYSIS_PREFIX}{model_id}"


def analysis_in_progress(lease: Lease) -> str:
    """What a refused analysis caller reads, e.g. "an analysis of loan-approval started by
    alice at 10:02 UTC is in progress (lease expires at 10:32 UTC)"."""
    model_id = lease.key.removeprefix(ANALYSIS_PREFIX)
    # The date only when the run started on another day than its lease ends.
    started = f"{lease.acquired_at:%Y-%m-%d %H:%M}" if lease.acquired_at.date() != lease.expires_at.date() \
        else f"{lease.acquired_at:%H:%M}"
    return (f"an analysis of {model_id} started by {lease.holder.started_by} at {started} UTC is in progress "
            f"(lease expires at {lease.expires_at:%H:%M} UTC)")


@contextlib.contextmanager
def analysis(store, model_id: str, *, started_by: str, note: str | None = None, ttl: timedelta = ANALYSIS_TTL,
             renew_every: timedelta | None = ANALYSIS_RENEW_EVERY) -> Iterator[HeldLease]:
    """:func:`held` on :func:`analysis_key` (``model_id``), refusing a second run with
    :func:`analysis_in_progress`'s message."""
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(held(store, analysis_key(model_id), ttl=ttl, renew_every=renew_every,
                                              holder=LeaseHolder(started_by=started_by, note=note)))
        except LeaseHeld as exc:
            raise LeaseHeld(exc.lease, analysis_in_progress(exc.lease)) from None
        yield handle
