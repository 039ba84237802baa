"""The storage interface: one repository per collection, named operations, two backends.

Everything above this package talks to a :class:`Store` and never to SQLite or MongoDB
directly. Each backend implements the same operations and passes the same contract suite
(``tests/test_storage_contract.py``).

Conventions shared by every operation:

- time ranges are half-open ``[start, end)`` and all datetimes are timezone-aware UTC;
- a document is refused by pydantic before anything is written (``InvalidInput``);
- inserting a document whose id exists raises :class:`~monitoring_core.errors.Conflict`
  and writes nothing;
- a database that cannot be reached or written raises
  :class:`~monitoring_core.errors.StoreUnavailable`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel, ValidationError

from ..errors import InvalidInput, NotFound
from ..models.alerts import Alert, AlertSuppression
from ..models.audit import AuditEntry
from ..models.baseline import DriftSnapshot
from ..models.incidents import Incident
from ..models.predictions import PredictionLog
from ..models.record import MonitoringRecord
from ..models.registry import RegisteredModel
from .frames import logs_to_frame

DocT = TypeVar("DocT", bound=BaseModel)


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


def validated(model: type[DocT], doc: Mapping[str, Any] | DocT) -> DocT:
    """``doc`` as a ``model``; a bad document raises ``InvalidInput`` naming the fields."""
    if isinstance(doc, model):
        return doc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(model.__name__, exc)) from None


def describe_validation_error(what: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()
    )
    return f"invalid {what}: {problems}"


class DocumentRepository(abc.ABC, Generic[DocT]):
    """Insert / get / compare-and-set update, shared by the document collections."""

    model: type[DocT]
    id_field: str

    @abc.abstractmethod
    def insert(self, doc: DocT) -> DocT:
        """Store a new document; ``Conflict`` if its id exists (nothing is written)."""

    @abc.abstractmethod
    def find(self, doc_id: str) -> DocT | None:
        """The document with this id, or None."""

    def get(self, doc_id: str) -> DocT:
        """The document with this id; ``NotFound`` otherwise."""
        doc = self.find(doc_id)
        if doc is None:
            raise NotFound(f"no {self.model.__name__} with {self.id_field} {doc_id!r}")
        return doc

    def update(self, doc_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None) -> DocT:
        """Apply ``changes`` (top-level fields) atomically and return the new document.

        ``expect`` maps top-level fields to the values they must hold now (for example
        ``{"status": "open"}``); if one differs, ``Conflict`` is raised and nothing is
        written, so two users cannot both make the same transition.
        """
        return self._compare_and_set(doc_id, dict(changes), dict(expect or {}))

    @abc.abstractmethod
    def _compare_and_set(self, doc_id: str, changes: dict[str, Any], expect: dict[str, Any]) -> DocT: ...

    def _merged(self, current: DocT, changes: dict[str, Any]) -> DocT:
        unknown = set(changes) - set(self.model.model_fields)
        if unknown:
            raise InvalidInput(f"unknown {self.model.__name__} field(s): {sorted(unknown)}")
        if self.id_field in changes and changes[self.id_field] != getattr(current, self.id_field):
            raise InvalidInput(f"{self.id_field} cannot be changed")
        return validated(self.model, {**current.model_dump(), **changes})


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


class BaselineRepository(DocumentRepository[DriftSnapshot]):
    """``drift_snapshots``. At most one snapshot per model is active (enforced by a
    unique partial index on both backends)."""

    model = DriftSnapshot
    id_field = "snapshot_id"

    @abc.abstractmethod
    def active(self, model_id: str) -> DriftSnapshot | None: ...

    @abc.abstractmethod
    def list(self, model_id: str | None = None) -> list[DriftSnapshot]:
        """Snapshots, newest first."""

    @abc.abstractmethod
    def activate(self, snapshot_id: str, at: datetime) -> DriftSnapshot:
        """Make this snapshot the model's active one, archiving the previous one at ``at``,
        in one atomic step."""


class RecordRepository(DocumentRepository[MonitoringRecord]):
    """``monitoring_records``: one per analysis run."""

    model = MonitoringRecord
    id_field = "record_id"

    @abc.abstractmethod
    def list(self, model_id: str, start: datetime | None = None, end: datetime | None = None,
             limit: int | None = None) -> list[MonitoringRecord]:
        """Records by run ``timestamp`` in ``[start, end)``, newest first."""

    def latest(self, model_id: str) -> MonitoringRecord | None:
        records = self.list(model_id, limit=1)
        return records[0] if records else None

    @abc.abstractmethod
    def purge_before(self, cutoff: datetime) -> int: ...


class IncidentRepository(DocumentRepository[Incident]):
    model = Incident
    id_field = "incident_id"

    @abc.abstractmethod
    def list(self, model_id: str | None = None, statuses: Sequence[str] | None = None,
             severities: Sequence[str] | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[Incident]:
        """Incidents by ``created_at``, newest first."""

    @abc.abstractmethod
    def open_for(self, model_id: str, metric_name: str) -> Incident | None:
        """The newest open or investigating incident of the model that names ``metric_name``."""


class AlertRepository(DocumentRepository[Alert]):
    model = Alert
    id_field = "alert_id"

    @abc.abstractmethod
    def list(self, model_id: str | None = None, statuses: Sequence[str] | None = None,
             severities: Sequence[str] | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[Alert]:
        """Alerts by ``created_at``, newest first."""

    @abc.abstractmethod
    def recent(self, model_id: str, metric_name: str, severity: str, since: datetime) -> Alert | None:
        """The newest alert for the same model, metric and severity created at or after
        ``since`` (deduplication)."""

    @abc.abstractmethod
    def purge_before(self, cutoff: datetime) -> int:
        """Delete non-CRITICAL alerts created before ``cutoff`` (CRITICAL ones are kept)."""


class SuppressionRepository(DocumentRepository[AlertSuppression]):
    model = AlertSuppression
    id_field = "suppression_id"

    @abc.abstractmethod
    def active(self, model_id: str, at: datetime) -> list[AlertSuppression]:
        """Rules of the model in force at ``at`` (``start_time <= at < end_time``)."""

    @abc.abstractmethod
    def list(self, model_id: str | None = None, include_expired: bool = True,
             at: datetime | None = None) -> list[AlertSuppression]:
        """Rules by ``start_time``, newest first; ``include_expired=False`` keeps those
        whose ``end_time`` is after ``at``."""


Sealer = Callable[[AuditEntry, AuditEntry | None], AuditEntry]


class AuditRepository(abc.ABC):
    """``monitoring_audit_logs``: append-only; entries are never updated."""

    @abc.abstractmethod
    def append(self, entry: AuditEntry, seal: Sealer) -> AuditEntry:
        """Append atomically: ``seal(entry, last)`` sets seq/prev_hash/hash from the last
        stored entry, and no other writer can slip in between."""

    @abc.abstractmethod
    def last(self) -> AuditEntry | None: ...

    @abc.abstractmethod
    def list(self, start: datetime | None = None, end: datetime | None = None,
             event_types: Sequence[str] | None = None, model_id: str | None = None,
             user_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries by ``seq``, newest first."""

    @abc.abstractmethod
    def iter_chain(self, batch_size: int = 5000) -> Iterator[AuditEntry]:
        """Every entry in ``seq`` order (for verifying the chain)."""

    @abc.abstractmethod
    def purge_before(self, cutoff: datetime) -> int: ...


class ModelRepository(abc.ABC):
    """The model registry: risk level, positive class and monitoring settings per model."""

    @abc.abstractmethod
    def upsert(self, model: RegisteredModel) -> RegisteredModel: ...

    @abc.abstractmethod
    def find(self, model_id: str) -> RegisteredModel | None: ...

    def get(self, model_id: str) -> RegisteredModel:
        model = self.find(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not registered")
        return model

    @abc.abstractmethod
    def list(self) -> list[RegisteredModel]: ...


class Store(abc.ABC):
    """One database: the repositories plus lifecycle operations."""

    predictions: PredictionRepository
    baselines: BaselineRepository
    records: RecordRepository
    incidents: IncidentRepository
    alerts: AlertRepository
    suppressions: SuppressionRepository
    audit: AuditRepository
    models: ModelRepository

    #: Human-readable description, e.g. "embedded SQLite at data/fairwatch.db".
    description: str

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create tables/collections and indexes if missing (idempotent; run at start-up)."""

    @abc.abstractmethod
    def purge_expired(self, now: datetime) -> PurgeReport:
        """Apply the retention policy now (the embedded store's job; MongoDB's TTL indexes do
        it on their own, and this removes anything they have not reached yet)."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A unit of work: the state change and its audit entry commit together.

        The embedded store makes this one SQLite transaction. On MongoDB the operations run
        in sequence (multi-document transactions need a replica set); each one is atomic.
        """
        yield

    @abc.abstractmethod
    def index_names(self) -> dict[str, list[str]]:
        """Index names per collection (for checks and the status page)."""

    def is_empty(self) -> bool:
        """No predictions and no registered models (a fresh store)."""
        return not self.predictions.model_ids() and not self.models.list()

    @abc.abstractmethod
    def close(self) -> None: ...
