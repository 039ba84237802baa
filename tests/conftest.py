"""Shared fixtures: a store per backend, the same tests on each.

``store`` runs every contract test on the embedded SQLite store (a real file in a temp
folder), on MongoDB through mongomock, and on a real MongoDB server when ``MONGODB_URI``
is set (a throwaway database, dropped afterwards).
"""

from __future__ import annotations

import functools
import os
import threading
import uuid

import pytest

BACKENDS = ["embedded", "mongomock"] + (["mongodb"] if os.environ.get("MONGODB_URI") else [])
TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef"


# A MongoDB server applies each single-document write (with its unique-index check) and each
# find-and-modify atomically; mongomock, an in-process imitation, does not under threads, so
# a thread race in a test would find mongomock's races rather than ours. One lock around each
# of those operations gives mongomock the server's per-operation atomicity; the gaps between
# operations, where our compare-and-set logic must hold, stay as racy as on a server.
_ATOMIC_OPERATIONS = ("insert_one", "insert_many", "replace_one", "update_one", "update_many", "delete_one",
                      "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
                      "find_one", "count_documents", "bulk_write")
_mongomock_lock = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with _mongomock_lock:
            return method(*args, **kwargs)
    return call


@pytest.fixture(autouse=True, scope="session")
def mongomock_operations_are_atomic():
    try:
        from mongomock.collection import Collection
    except ImportError:
        yield
        return
    originals = {name: getattr(Collection, name) for name in _ATOMIC_OPERATIONS}
    for name, method in originals.items():
        setattr(Collection, name, _atomic(method))
    yield
    for name, method in originals.items():
        setattr(Collection, name, method)


@pytest.fixture(autouse=True)
def audit_key(monkeypatch):
    """Every test runs with an audit key, as production must (outside demo mode settings
    without one are refused); tests of demo mode remove it."""
    monkeypatch.setenv("FAIRWATCH_AUDIT_KEY", TEST_AUDIT_KEY)
    return TEST_AUDIT_KEY


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def store_factory(backend, tmp_path):
    """Opens (and reopens) the store under test; closes everything at the end."""
    opened = []
    database = f"fairwatch_test_{uuid.uuid4().hex[:8]}"
    client = None
    if backend == "mongomock":
        import mongomock

        client = mongomock.MongoClient(tz_aware=True)

    def open_store():
        if backend == "embedded":
            from monitoring_core.storage.sqlite import SqliteStore

            store = SqliteStore(tmp_path / "data" / "fairwatch.db")
        elif backend == "mongomock":
            from monitoring_core.storage.mongo import MongoStore

            store = MongoStore(client, database)
        else:
            from monitoring_core.storage.mongo import MongoStore

            store = MongoStore.connect(os.environ["MONGODB_URI"], database)
        store.ensure_schema()
        opened.append(store)
        return store

    yield open_store
    if backend == "mongodb" and opened:
        opened[0].client.drop_database(database)
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory):
    return store_factory()


@pytest.fixture
def reopen(store, store_factory):
    """Close the store and open the same database again (a restart)."""

    def again():
        store.close()
        return store_factory()

    return again


@pytest.fixture
def embedded(tmp_path):
    """The embedded store alone, for tests about files and SQLite faults rather than backends."""
    from monitoring_core.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "fw.db")
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _main_module_restored():
    """AppTest runs app.py as ``__main__``; a later spawn-based process test would make its
    children import app.py (and die). Each test leaves ``__main__`` as it found it."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
