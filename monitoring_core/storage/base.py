"""The storage interface: named operations per collection, two backends.

Everything above this package talks to a :class:`Store` and never to SQLite or MongoDB
directly. The document collections are written once (:mod:`.repositories`) over a small
driver per backend (:mod:`.driver`); predictions, the analytic hot path, have their own
repository per backend. Both backends pass the same contract suite
(``tests/test_storage_contract.py``).

Conventions shared by every operation:

- time ranges are half-open ``[start, end)`` and all datetimes are timezone-aware UTC;
- a document is refused by pydantic before anything is written (``InvalidInput``);
- inserting a document whose id exists raises :class:`~monitoring_core.errors.Conflict`
  and writes nothing;
- a database that cannot be reached or written raises
  :class:`~monitoring_core.errors.StoreUnavailable`; a stored document that cannot be
  read back raises :class:`~monitoring_core.errors.StoreDamaged` naming it.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..models.predictions import PredictionLog
from .driver import Collection, Driver
from .frames import logs_to_frame
from .repositories import (
    DOCUMENT_REPOSITORIES,
    Alerts,
    AuditLog,
    Baselines,
    Incidents,
    Leases,
    Models,
    Records,
    Suppressions,
    describe_validation_error,
    validated,
)
from .retention import RetentionPolicy

__all__ = ["GroundTruthReport", "InsertReport", "PredictionRepository", "PredictionSummary", "PurgeReport", "Store",
           "describe_validation_error", "validated"]


@dataclass(frozen=True)
class InsertReport:
    """What a batch insert of predictions did: every row is either inserted or listed."""

    inserted: int
    duplicate_ids: list[str] = field(default_factory=list)

    def __add__(self, other: InsertReport) -> InsertReport:
        return InsertReport(self.inserted + other.inserted, self.duplicate_ids + other.duplicate_ids)


@dataclass(frozen=True)
class GroundTruthReport:
    updated: int
    unknown_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PredictionSummary:
    model_id: str
    count: int
    labelled: int
    first: datetime | None
    last: datetime | None
    model_versions: list[str]


@dataclass(frozen=True)
class PurgeReport:
    """Documents removed by retention, per collection."""

    removed: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.removed.values())


class PredictionRepository(abc.ABC):
    """``prediction_logs``: the analytic hot path.

    Reads return a DataFrame whose columns are document paths
    (:mod:`monitoring_core.models.columns`), holding only the columns asked for.
    """

    def insert_many(self, logs: Sequence[PredictionLog]) -> InsertReport:
        """Store validated prediction documents (see :meth:`insert_frame`)."""
        if not logs:
            return InsertReport(0)
        return self.insert_frame(logs_to_frame(logs))

    @abc.abstractmethod
    def insert_frame(self, frame: pd.DataFrame) -> InsertReport:
        """Store rows that have already been validated (:mod:`monitoring_core.ingest`).

        Rows whose ``prediction_id`` is already stored are not written and are listed in
        the report; all other rows are written.
        """

    @abc.abstractmethod
    def window(self, model_id: str, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Predictions of ``model_id`` with ``start <= timestamp < end``, oldest first.

        Only ``columns`` are read. A column never logged for this model comes back all
        missing, so callers see the gap rather than a KeyError.
        """

    @abc.abstractmethod
    def columns(self, model_id: str) -> list[str]:
        """Every column path ever logged for ``model_id`` (features, classes, attributes...)."""

    @abc.abstractmethod
    def summary(self, model_id: str) -> PredictionSummary:
        """Counts and time span of a model's predictions."""

    def check(self, model_id: str) -> list[str]:
        """What of the model's stored predictions cannot be read back, one message per damaged
        part (empty when everything is readable). Reads everything: for ``status``, not pages.

        Only the embedded store keeps its own encoded blobs; MongoDB checks its documents itself.
        """
        return []

    @abc.abstractmethod
    def model_ids(self) -> list[str]:
        """Models that have predictions, sorted."""

    @abc.abstractmethod
    def count(self, model_id: str, start: datetime | None = None, end: datetime | None = None) -> int: ...

    @abc.abstractmethod
    def find(self, prediction_id: str) -> PredictionLog | None:
        """One prediction as a document, or None."""

    @abc.abstractmethod
    def record_ground_truth(self, model_id: str, labels: Mapping[str, str], at: datetime) -> GroundTruthReport:
        """Attach true labels (``prediction_id -> label``) that arrived at ``at``."""

    @abc.abstractmethod
    def purge_before(self, cutoff: datetime) -> int:
        """Delete predictions with ``timestamp < cutoff``; returns how many."""


class Store:
    """One database: the repositories plus lifecycle operations.

    A backend subclass provides the driver, its prediction repository and the schema of
    its predictions; everything else is shared.
    """

    baselines: Baselines
    records: Records
    incidents: Incidents
    alerts: Alerts
    suppressions: Suppressions
    audit: AuditLog
    models: Models
    leases: Leases

    def __init__(self, driver: Driver, predictions: PredictionRepository, retention: RetentionPolicy | None,
                 description: str):
        self.driver = driver
        self.predictions = predictions
        self.retention = retention or RetentionPolicy()
        #: Human-readable description, e.g. "embedded SQLite at data/fairwatch.db".
        self.description = description
        for attribute, repository in DOCUMENT_REPOSITORIES.items():
            setattr(self, attribute, repository(driver))

    def collections(self) -> list[Collection]:
        """Every declared collection of this store (documents, plus any the backend's
        predictions declare)."""
        return [getattr(self, attribute).collection for attribute in DOCUMENT_REPOSITORIES]

    def ensure_schema(self) -> None:
        """Create collections and indexes if missing, repair indexes that differ from their
        declaration (idempotent; run at start-up)."""
        with self.driver.atomic():
            for collection in self.collections():
                self.driver.ensure_collection(collection)

    def schema_problems(self) -> list[str]:
        """Every declared index the database lacks or holds differently (keys, uniqueness,
        partial filter, TTL); empty when the schema is whole."""
        problems = []
        for collection in self.collections():
            present = self.driver.indexes(collection)
            for index in collection.indexes:
                wanted = self.driver.expected(collection, index)
                if wanted not in present:
                    problems.append(f"{collection.name}: index {wanted} is missing or differs")
        return problems

    def purge_expired(self, now: datetime) -> PurgeReport:
        """Apply the retention policy now (the embedded store's job; MongoDB's TTL indexes do
        it on their own, and this removes anything they have not reached yet)."""
        cutoffs = self.retention.cutoffs(now)
        with self.driver.atomic():
            removed = {"prediction_logs": self.predictions.purge_before(cutoffs["prediction_logs"])}
            for attribute in DOCUMENT_REPOSITORIES:
                repository = getattr(self, attribute)
                if repository.collection.ttl_index is not None:
                    removed[repository.collection.name] = repository.purge_before(cutoffs[repository.collection.name])
        return PurgeReport(removed)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A unit of work: the state change and its audit entry commit together.

        The embedded store makes this one SQLite transaction. On MongoDB the operations run
        in sequence (multi-document transactions need a replica set); each one is atomic.
        """
        with self.driver.atomic():
            yield

    def is_empty(self) -> bool:
        """No predictions and no registered models (a fresh store)."""
        return not self.predictions.model_ids() and not self.models.list()

    def close(self) -> None:
        self.driver.close()
