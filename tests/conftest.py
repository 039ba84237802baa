"""Shared fixtures: a store per backend, the same tests on each.

``store`` runs every contract test on the embedded SQLite store (a real file in a temp
folder), on MongoDB through mongomock, and on a real MongoDB server when ``MONGODB_URI``
is set (a throwaway database, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid

import pytest

BACKENDS = ["embedded", "mongomock"] + (["mongodb"] if os.environ.get("MONGODB_URI") else [])
TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef"


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
