"""Leases on every backend: one holder at a time, expiry, renewal, ownership, races."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitoring_core import clock, leases
from monitoring_core.errors import Conflict, InvalidInput
from monitoring_core.leases import LeaseHeld, LeaseHolder, LeaseLost
from monitoring_core.storage.sqlite import SqliteStore

T0 = datetime(2026, 11, 23, 10, 2, tzinfo=UTC)
TTL = timedelta(minutes=10)
KEY = "analysis:loan-approval"
ALICE, BOB = LeaseHolder(started_by="alice", note="cli analyze"), LeaseHolder(started_by="bob")


def test_a_held_lease_refuses_others_and_names_its_holder(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    with pytest.raises(LeaseHeld) as refused:
        store.leases.acquire(KEY, "owner-b", TTL, BOB, T0 + timedelta(minutes=3))
    message = str(refused.value)
    assert isinstance(refused.value, Conflict)
    assert "alice" in message and "cli analyze" in message and "2026-11-23 10:02:00 UTC" in message
    assert refused.value.lease.owner == "owner-a"
    assert store.leases.holder(KEY, T0).holder == ALICE


def test_the_same_owner_cannot_take_its_lease_twice(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    with pytest.raises(LeaseHeld):
        store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)


def test_release_frees_the_lease_and_a_second_release_is_harmless(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    assert store.leases.release(KEY, "owner-a") is True
    assert store.leases.holder(KEY, T0) is None
    assert store.leases.release(KEY, "owner-a") is False
    assert store.leases.acquire(KEY, "owner-b", TTL, BOB, T0).owner == "owner-b"


def test_other_keys_are_independent(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    assert store.leases.acquire("analysis:fraud-screening", "owner-b", TTL, BOB, T0).holder == BOB


def test_an_expired_lease_is_taken_over(store):
    """A crashed holder never releases; its lease ends at expires_at and no later."""
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    with pytest.raises(LeaseHeld):
        store.leases.acquire(KEY, "owner-b", TTL, BOB, T0 + TTL - timedelta(milliseconds=1))
    assert store.leases.holder(KEY, T0 + TTL) is None
    taken = store.leases.acquire(KEY, "owner-b", TTL, BOB, T0 + TTL)
    assert taken.expires_at == T0 + 2 * TTL
    assert store.leases.holder(KEY, T0 + TTL).owner == "owner-b"


def test_renewal_extends_the_lease(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    renewed = store.leases.renew(KEY, "owner-a", TTL, T0 + timedelta(minutes=8))
    assert renewed.expires_at == T0 + timedelta(minutes=18)
    assert renewed.acquired_at == T0 and renewed.renewed_at == T0 + timedelta(minutes=8)
    with pytest.raises(LeaseHeld):  # without the renewal this would take it over
        store.leases.acquire(KEY, "owner-b", TTL, BOB, T0 + timedelta(minutes=15))
    assert store.leases.holder(KEY, T0 + timedelta(minutes=15)).expires_at == T0 + timedelta(minutes=18)


def test_only_the_owner_renews_or_releases(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    with pytest.raises(LeaseLost):
        store.leases.renew(KEY, "owner-b", TTL, T0)
    with pytest.raises(LeaseLost):
        store.leases.release(KEY, "owner-b")
    assert store.leases.holder(KEY, T0).expires_at == T0 + TTL


def test_a_lost_lease_cannot_be_renewed_or_released_and_names_the_new_holder(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    store.leases.acquire(KEY, "owner-b", TTL, BOB, T0 + TTL)
    with pytest.raises(LeaseLost, match="was lost.*held by bob"):
        store.leases.renew(KEY, "owner-a", TTL, T0 + TTL)
    with pytest.raises(LeaseLost, match="held by bob"):
        store.leases.release(KEY, "owner-a")
    assert store.leases.holder(KEY, T0 + TTL).owner == "owner-b"


def test_a_lease_outlives_a_restart(store, reopen):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    again = reopen()
    assert again.leases.holder(KEY, T0).owner == "owner-a"
    with pytest.raises(LeaseHeld):
        again.leases.acquire(KEY, "owner-b", TTL, BOB, T0)


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), 600])
def test_a_ttl_that_is_not_a_positive_duration_is_refused(store, ttl):
    with pytest.raises(InvalidInput, match="ttl"):
        store.leases.acquire(KEY, "owner-a", ttl, ALICE, T0)
    assert store.leases.find(KEY) is None


# -- races ----------------------------------------------------------------------------


@pytest.fixture
def eager_thread_switching():
    """Switch threads every microsecond (not every 5 ms), so racing threads interleave
    between a read and a write as they would on a busy server."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("earlier", [None, "expired"])
def test_eight_threads_racing_for_a_lease_one_wins(store, earlier, eager_thread_switching):
    """Racing for a free key (two inserts) or for an expired lease (two takeovers)."""
    if earlier:
        store.leases.acquire(KEY, "crashed", TTL, ALICE, T0 - 2 * TTL)
    start = threading.Barrier(8)
    won, refused = [], []

    def contend(n: int) -> None:
        start.wait()
        try:
            won.append(store.leases.acquire(KEY, f"owner-{n}", TTL, LeaseHolder(started_by=f"user-{n}"), T0))
        except LeaseHeld as exc:
            refused.append(exc.lease.owner)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == 7
    assert set(refused) == {won[0].owner}
    assert store.leases.holder(KEY, T0).owner == won[0].owner


def _contend_from_a_process(path: str, n: int, earlier: bool, start, results) -> None:
    store = SqliteStore(Path(path))
    start.wait()
    try:
        store.leases.acquire(KEY, f"process-{n}", TTL, LeaseHolder(started_by=f"user-{n}"), T0)
        results.put(("won", f"process-{n}"))
    except LeaseHeld as exc:
        results.put(("refused", exc.lease.owner))
    finally:
        store.close()


@pytest.mark.parametrize("earlier", [False, True])
def test_processes_racing_on_one_embedded_file_one_wins(tmp_path, earlier):
    path = tmp_path / "fairwatch.db"
    store = SqliteStore(path)
    store.ensure_schema()
    if earlier:
        store.leases.acquire(KEY, "crashed", TTL, ALICE, T0 - 2 * TTL)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_contend_from_a_process, args=(str(path), n, earlier, start, results))
                 for n in range(3)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    winners = [owner for outcome, owner in outcomes if outcome == "won"]
    assert len(winners) == 1
    assert {owner for outcome, owner in outcomes if outcome == "refused"} == set(winners)
    assert store.leases.holder(KEY, T0).owner == winners[0]
    store.close()


# -- the held() context -------------------------------------------------------------------


def test_held_releases_at_the_end(store):
    with clock.frozen(T0), leases.held(store, KEY, holder=ALICE, ttl=TTL) as lease:
        assert store.leases.holder(KEY, T0).owner == lease.lease.owner
        with pytest.raises(LeaseHeld, match="alice"):
            store.leases.acquire(KEY, "owner-b", TTL, BOB, T0)
    assert store.leases.find(KEY) is None


def test_held_releases_when_the_body_fails_and_the_error_propagates(store):
    with clock.frozen(T0), pytest.raises(ZeroDivisionError):
        with leases.held(store, KEY, holder=ALICE, ttl=TTL):
            1 / 0  # noqa: B018
    assert store.leases.find(KEY) is None


def test_held_by_another_refuses_without_running_the_body(store):
    store.leases.acquire(KEY, "owner-a", TTL, ALICE, T0)
    ran = []
    with clock.frozen(T0 + timedelta(minutes=1)), pytest.raises(LeaseHeld):
        with leases.held(store, KEY, holder=BOB, ttl=TTL):
            ran.append(True)
    assert ran == [] and store.leases.holder(KEY, T0).owner == "owner-a"


def test_held_renews_in_the_background_while_the_body_runs(store):
    with clock.frozen(T0) as advance:
        with leases.held(store, KEY, holder=ALICE, ttl=TTL, renew_every=timedelta(milliseconds=5)) as lease:
            advance(TTL + timedelta(minutes=5))  # the work outlasts the first ttl
            moved = clock.now()
            while lease.lease.renewed_at < moved:
                assert lease.renewed.wait(timeout=30), "the lease was not renewed"
                lease.renewed.clear()
            assert store.leases.holder(KEY, moved).expires_at >= moved + TTL
            with pytest.raises(LeaseHeld):
                store.leases.acquire(KEY, "owner-b", TTL, BOB, moved)
    assert store.leases.find(KEY) is None


def test_held_reports_a_lease_lost_during_the_body(store):
    with clock.frozen(T0) as advance:
        with pytest.raises(LeaseLost, match="held by bob"):
            with leases.held(store, KEY, holder=ALICE, ttl=TTL):
                advance(2 * TTL)  # the holder stalled; someone else took over
                store.leases.acquire(KEY, "owner-b", TTL, BOB, clock.now())
        assert store.leases.holder(KEY, clock.now()).owner == "owner-b"


def test_held_notes_a_lost_lease_on_the_body_s_own_error(store):
    with clock.frozen(T0) as advance:
        with pytest.raises(ZeroDivisionError) as failed:
            with leases.held(store, KEY, holder=ALICE, ttl=TTL):
                advance(2 * TTL)
                store.leases.acquire(KEY, "owner-b", TTL, BOB, clock.now())
                1 / 0  # noqa: B018
    assert any("was lost" in note for note in failed.value.__notes__)


def test_held_notices_a_lease_taken_over_and_already_released(store):
    with clock.frozen(T0) as advance:
        with pytest.raises(LeaseLost, match="nobody holds it now"):
            with leases.held(store, KEY, holder=ALICE, ttl=TTL):
                advance(2 * TTL)
                store.leases.acquire(KEY, "owner-b", TTL, BOB, clock.now())
                store.leases.release(KEY, "owner-b")


def test_the_renewer_stops_on_a_lost_lease_and_check_says_so(store):
    with clock.frozen(T0) as advance:
        with pytest.raises(LeaseLost):
            with leases.held(store, KEY, holder=ALICE, ttl=TTL, renew_every=timedelta(minutes=5)) as lease:
                advance(2 * TTL)
                store.leases.acquire(KEY, "owner-b", TTL, BOB, clock.now())
                with pytest.raises(LeaseLost):
                    lease.renew()
                with pytest.raises(LeaseLost, match="held by bob"):
                    lease.check()


@pytest.mark.parametrize("every", [timedelta(0), TTL, timedelta(minutes=11)])
def test_renew_every_must_be_shorter_than_the_ttl(store, every):
    with clock.frozen(T0), pytest.raises(InvalidInput, match="renew_every"):
        with leases.held(store, KEY, holder=ALICE, ttl=TTL, renew_every=every):
            pass
    assert store.leases.find(KEY) is None


# -- analyses -------------------------------------------------------------------------------


def test_a_second_analysis_of_a_model_is_refused_naming_who_started_the_first(store):
    with clock.frozen(T0), leases.analysis(store, "loan-approval", started_by="alice", ttl=timedelta(minutes=30),
                                           renew_every=None):
        with pytest.raises(LeaseHeld) as refused:
            with leases.analysis(store, "loan-approval", started_by="bob"):
                pass
        with leases.analysis(store, "fraud-screening", started_by="bob"):
            pass
    assert str(refused.value) == ("an analysis of loan-approval started by alice at 10:02 UTC is in progress "
                                  "(lease expires at 10:32 UTC)")
    assert store.leases.find(leases.analysis_key("loan-approval")) is None


def test_the_analysis_message_dates_a_run_that_crossed_midnight(store):
    started = datetime(2026, 11, 23, 23, 55, tzinfo=UTC)
    store.leases.acquire(leases.analysis_key("loan-approval"), "owner-a", TTL, ALICE, started)
    lease = store.leases.holder(leases.analysis_key("loan-approval"), started)
    assert leases.analysis_in_progress(lease) == ("an analysis of loan-approval started by alice at 2026-11-23 "
                                                  "23:55 UTC is in progress (lease expires at 00:05 UTC)")
