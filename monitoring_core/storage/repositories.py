"""The document collections, written once over a :class:`~.driver.Driver`.

Each repository declares its collection (fields that queries use, indexes) and its named
operations; both backends run exactly this code. Adding a collection means adding one
class here (a :class:`~.driver.Collection` declaration plus its operations) and listing it
in :data:`DOCUMENT_REPOSITORIES`.

Conventions: time ranges are half-open ``[start, end)``; lists are newest first; a
document is validated before anything is written (``InvalidInput``); a duplicate id raises
``Conflict`` and writes nothing; a stored document that no longer parses raises
``StoreDamaged`` naming the collection and id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from .. import clock
from ..errors import Conflict, InvalidInput, NotFound, StoreDamaged, StoreUnavailable
from ..models.alerts import Alert, AlertSuppression
from ..models.audit import AuditCheckpoint, AuditEntry
from ..models.baseline import DriftSnapshot
from ..models.common import Severity, describe_validation_error, validated  # noqa: F401 (re-exported)
from ..models.delivery import AlertDelivery, DeliveryKind, DeliveryStatus
from ..models.incidents import Incident, IncidentStatus
from ..models.lease import Lease, LeaseHolder
from ..models.record import MonitoringRecord
from ..models.registry import RegisteredModel
from ..models.schedule import BaselineReview, JobExecution
from ..models.user import User
from .driver import ASC, DESC, Collection, Cond, Driver, DuplicateKey, Field, Index, Query, Row, parse

DocT = TypeVar("DocT", bound=BaseModel)

# Optimistic writes (audit append, model upsert) retry when another writer got in first.
WRITE_ATTEMPTS = 50


def newest(time_field: str) -> tuple[tuple[str, int], ...]:
    return ((time_field, DESC),)


def is_in(path: str, values: Sequence[Any] | None) -> tuple[Cond, ...]:
    return () if not values else (Cond(path, "in", [str(v) for v in values]),)


def time_range(path: str, start: datetime | None, end: datetime | None) -> tuple[Cond, ...]:
    """Conditions of the half-open range ``[start, end)`` (a missing bound is open)."""
    return tuple(Cond(path, op, v) for op, v in ((">=", start), ("<", end)) if v is not None)


class Repository(Generic[DocT]):
    """Reading a declared collection through the driver."""

    collection: ClassVar[Collection]

    def __init__(self, driver: Driver):
        self.driver = driver

    def _parse(self, row: Row) -> DocT:
        return parse(self.collection, row)

    def _select(self, *where: Cond, order: tuple[tuple[str, int], ...] = (), limit: int | None = None) -> list[DocT]:
        rows = self.driver.query(self.collection, Query(tuple(where), order, limit))
        return [self._parse(row) for row in rows]

    def _first(self, *where: Cond, order: tuple[tuple[str, int], ...] = ()) -> DocT | None:
        found = self._select(*where, order=order, limit=1)
        return found[0] if found else None

    def find(self, doc_id: Any) -> DocT | None:
        """The document with this id, or None."""
        row = self.driver.load(self.collection, doc_id)
        return None if row is None else self._parse(row)

    def get(self, doc_id: Any) -> DocT:
        """The document with this id; ``NotFound`` otherwise."""
        doc = self.find(doc_id)
        if doc is None:
            raise NotFound(f"no {self.collection.model.__name__} with {self.collection.id_field} {doc_id!r}")
        return doc

    def purge_before(self, cutoff: datetime) -> int:
        """Delete what retention removes: documents whose TTL field is before ``cutoff``
        (and that match the TTL index's partial filter)."""
        index = self.collection.ttl_index
        if index is None:
            raise TypeError(f"{self.collection.name} has no retention period")
        return self.driver.delete(self.collection, (Cond(index.keys[0][0], "<", cutoff), *index.where))


class DocumentRepository(Repository[DocT]):
    """Insert and compare-and-set update on top of reading."""

    def insert(self, doc: Mapping[str, Any] | DocT) -> DocT:
        """Store a new document; ``Conflict`` if its id exists (nothing is written)."""
        doc = validated(self.collection.model, doc)
        try:
            self.driver.insert(self.collection, doc)
        except DuplicateKey as exc:
            raise self._refused(doc, exc) from None
        return doc

    def update(self, doc_id: Any, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None) -> DocT:
        """Apply ``changes`` (top-level fields) atomically and return the new document.

        ``expect`` maps top-level fields to the values they must hold now (for example
        ``{"status": "open"}``); if one differs, or the document changes between reading
        and writing, ``Conflict`` is raised and nothing is written, so two users cannot
        both make the same transition.
        """
        row = self.driver.load(self.collection, doc_id)
        if row is None:
            raise NotFound(f"no {self.collection.model.__name__} with {self.collection.id_field} {doc_id!r}")
        current = self._parse(row)
        for name, wanted in (expect or {}).items():
            if getattr(current, name) != wanted:
                raise Conflict(f"{self.collection.model.__name__} {doc_id!r} has {name}={getattr(current, name)!s}, "
                               f"expected {wanted!s}; it was changed by someone else — reload and try again")
        updated = self._merged(current, dict(changes))
        self._replace(updated, row.rev)
        return updated

    def _replace(self, doc: DocT, rev: int) -> None:
        try:
            replaced = self.driver.replace(self.collection, doc, rev)
        except DuplicateKey as exc:
            raise self._refused(doc, exc) from None
        if not replaced:
            raise Conflict(f"{self.collection.model.__name__} {getattr(doc, self.collection.id_field)!r} was changed "
                           "by someone else meanwhile; reload and try again")

    def _merged(self, current: DocT, changes: dict[str, Any]) -> DocT:
        model, id_field = self.collection.model, self.collection.id_field
        unknown = set(changes) - set(model.model_fields)
        if unknown:
            raise InvalidInput(f"unknown {model.__name__} field(s): {sorted(unknown)}")
        if id_field in changes and changes[id_field] != getattr(current, id_field):
            raise InvalidInput(f"{id_field} cannot be changed")
        return validated(model, {**current.model_dump(), **changes})

    def _refused(self, doc: DocT, exc: DuplicateKey) -> Conflict:
        """The message for a write a unique index refused (collections with a unique
        index besides the id override this to say which rule)."""
        what, id_field = self.collection.model.__name__, self.collection.id_field
        if exc.on_id:
            return Conflict(f"a {what} with {id_field} {getattr(doc, id_field)!r} already exists; nothing was written")
        return Conflict(f"{what} refused by a unique index of {self.collection.name}; nothing was written")


class Baselines(DocumentRepository[DriftSnapshot]):
    """``drift_snapshots``. At most one snapshot per model is active: a unique partial
    index enforces it on both backends, whatever the code above does."""

    collection = Collection(
        "drift_snapshots", DriftSnapshot, "snapshot_id",
        fields=(Field("model_id"), Field("is_active", "bool"), Field("created_at", "time")),
        indexes=(
            Index((("model_id", ASC), ("is_active", ASC))),
            Index((("model_id", ASC),), unique=True, where=(Cond("is_active", "==", True),),
                  name="one_active_per_model"),
        ))

    def _refused(self, doc, exc):
        if exc.on_id:
            return super()._refused(doc, exc)
        return Conflict(f"model {doc.model_id!r} already has an active baseline; insert this one inactive and "
                        "activate it")

    def active(self, model_id: str) -> DriftSnapshot | None:
        return self._first(Cond("model_id", "==", model_id), Cond("is_active", "==", True))

    def list(self, model_id: str | None = None) -> list[DriftSnapshot]:
        """Snapshots, newest first."""
        return self._select(*([Cond("model_id", "==", model_id)] if model_id else []), order=newest("created_at"))

    def activate(self, snapshot_id: str, at: datetime) -> DriftSnapshot:
        """Make this snapshot the model's active one, archiving the previous one at ``at``.

        Every write is revision-checked and the unique partial index never lets two
        snapshots be active. On SQLite the whole step is one transaction; on MongoDB a
        failed final write restores the snapshots archived just before (see
        :mod:`.mongo`), so a caller sees either the old or the new active baseline.
        """
        with self.driver.atomic():
            row = self.driver.load(self.collection, snapshot_id)
            if row is None:
                raise NotFound(f"no baseline {snapshot_id!r}")
            target = self._parse(row)
            archived: list[tuple[DriftSnapshot, int]] = []
            for other in self.driver.query(self.collection, Query((Cond("model_id", "==", target.model_id),
                                                                   Cond("is_active", "==", True)))):
                if other.id == snapshot_id:
                    continue
                current = self._parse(other)
                self._replace(current.model_copy(update={"is_active": False, "archived_at": at}), other.rev)
                archived.append((current, other.rev + 1))
            activated = validated(DriftSnapshot, {**target.model_dump(), "is_active": True, "archived_at": None})
            try:
                self._replace(activated, row.rev)
            except Conflict:
                self._restore(archived)
                raise
        return activated

    def _restore(self, archived: list[tuple[DriftSnapshot, int]]) -> None:
        for snapshot, rev in archived:
            try:
                self.driver.replace(self.collection, snapshot, rev)
            except DuplicateKey:
                pass  # another activation won meanwhile: its snapshot stays the active one


class Records(DocumentRepository[MonitoringRecord]):
    """``monitoring_records``: one per analysis run."""

    collection = Collection(
        "monitoring_records", MonitoringRecord, "record_id",
        fields=(Field("model_id"), Field("timestamp", "time"), Field("max_severity"), Field("status"),
                Field("analysis_period.start", "time"), Field("analysis_period.end", "time")),
        indexes=(
            Index((("model_id", ASC), ("timestamp", DESC))),
            Index((("max_severity", ASC), ("timestamp", DESC))),
            Index((("analysis_period.start", ASC), ("analysis_period.end", ASC))),
            Index((("model_id", ASC), ("analysis_period.end", ASC))),
            Index((("timestamp", ASC),), ttl="monitoring_records", name="ttl_timestamp"),
        ))

    def list(self, model_id: str, start: datetime | None = None, end: datetime | None = None,
             limit: int | None = None) -> list[MonitoringRecord]:
        """Records by run ``timestamp`` in ``[start, end)``, newest first."""
        return self._select(Cond("model_id", "==", model_id), *time_range("timestamp", start, end),
                            order=newest("timestamp"), limit=limit)

    def history(self, model_id: str, start: datetime | None = None, end: datetime | None = None
                ) -> list[MonitoringRecord]:
        """Records whose analysed period ends in ``[start, end)``, oldest first (the pages' history)."""
        return self._select(Cond("model_id", "==", model_id), *time_range("analysis_period.end", start, end),
                            order=(("analysis_period.end", ASC),))

    def latest(self, model_id: str, status: str | None = None) -> MonitoringRecord | None:
        """The newest record of the model, or of those with ``status`` (completed, skipped)."""
        records = self._select(Cond("model_id", "==", model_id), *is_in("status", [status] if status else None),
                               order=newest("timestamp"), limit=1)
        return records[0] if records else None


def listing(model_id: str | None, statuses: Sequence[str] | None, severities: Sequence[str] | None,
            since: datetime | None) -> tuple[Cond, ...]:
    """Filters of the incident and alert lists."""
    return ((*([Cond("model_id", "==", model_id)] if model_id else []), *is_in("status", statuses),
             *is_in("severity", severities), *time_range("created_at", since, None)))


class Incidents(DocumentRepository[Incident]):
    collection = Collection(
        "incidents", Incident, "incident_id",
        fields=(Field("model_id"), Field("severity"), Field("status"), Field("assigned_to"),
                Field("created_at", "time"), Field("metrics_triggered.metric_name", "tags"),
                Field("record_ids", "tags")),
        indexes=(
            Index((("status", ASC), ("severity", ASC), ("created_at", DESC))),
            Index((("model_id", ASC), ("created_at", DESC))),
            Index((("assigned_to", ASC), ("status", ASC))),
            Index((("model_id", ASC), ("metrics_triggered.metric_name", ASC))),
        ))

    def list(self, model_id: str | None = None, statuses: Sequence[str] | None = None,
             severities: Sequence[str] | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[Incident]:
        """Incidents by ``created_at``, newest first."""
        return self._select(*listing(model_id, statuses, severities, since), order=newest("created_at"), limit=limit)

    def open_for(self, model_id: str, metric_name: str) -> Incident | None:
        """The newest open or investigating incident of the model that names ``metric_name``."""
        return self._first(Cond("model_id", "==", model_id), Cond("metrics_triggered.metric_name", "has", metric_name),
                           *is_in("status", [IncidentStatus.OPEN, IncidentStatus.INVESTIGATING]),
                           order=newest("created_at"))

    def linked_to(self, model_id: str, record_id: str) -> list[Incident]:
        """Incidents of the model that a monitoring record was already applied to."""
        return self._select(Cond("model_id", "==", model_id), Cond("record_ids", "has", record_id),
                            order=newest("created_at"))


class Alerts(DocumentRepository[Alert]):
    collection = Collection(
        "alerts", Alert, "alert_id",
        fields=(Field("incident_id"), Field("model_id"), Field("metric_name"), Field("severity"), Field("status"),
                Field("created_at", "time"), Field("dedup_key")),
        indexes=(
            Index((("incident_id", ASC),)),
            # One alert at a time absorbs the repeats of a key (alerts.manager); "> ''" keeps
            # the alerts that released their key (None) out of the index on both backends.
            Index((("dedup_key", ASC),), unique=True, where=(Cond("dedup_key", ">", ""),), name="one_holder_per_dedup_key"),
            Index((("model_id", ASC), ("metric_name", ASC), ("severity", ASC), ("created_at", DESC))),
            Index((("status", ASC), ("severity", ASC), ("created_at", DESC))),
            # Retention spares CRITICAL alerts. Partial indexes accept neither != nor
            # (before MongoDB 6) "in", but "INFO" and "WARNING" both sort after "CRITICAL".
            Index((("created_at", ASC),), where=(Cond("severity", ">", Severity.CRITICAL.value),), ttl="alerts",
                  name="ttl_created_at_noncritical"),
        ))

    def list(self, model_id: str | None = None, statuses: Sequence[str] | None = None,
             severities: Sequence[str] | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[Alert]:
        """Alerts by ``created_at``, newest first."""
        return self._select(*listing(model_id, statuses, severities, since), order=newest("created_at"), limit=limit)

    def recent(self, model_id: str, metric_name: str, severity: str, since: datetime) -> Alert | None:
        """The newest alert for the same model, metric and severity created at or after
        ``since`` (deduplication)."""
        return self._first(Cond("model_id", "==", model_id), Cond("metric_name", "==", metric_name),
                           Cond("severity", "==", str(severity)), *time_range("created_at", since, None),
                           order=newest("created_at"))

    def holding(self, dedup_key: str) -> Alert | None:
        """The alert that currently absorbs repeats of ``dedup_key`` (at most one)."""
        return self._first(Cond("dedup_key", "==", dedup_key))

    def _refused(self, doc, exc):
        if exc.on_id:
            return super()._refused(doc, exc)
        return Conflict(f"another alert already holds the deduplication key {doc.dedup_key!r}; nothing was written")


class Suppressions(DocumentRepository[AlertSuppression]):
    collection = Collection(
        "alert_suppressions", AlertSuppression, "suppression_id",
        fields=(Field("model_id"), Field("start_time", "time"), Field("end_time", "time"), Field("status")),
        indexes=(
            Index((("model_id", ASC), ("start_time", ASC), ("end_time", ASC))),
            Index((("end_time", ASC),)),
        ))

    def active(self, model_id: str, at: datetime) -> list[AlertSuppression]:
        """Rules of the model in force at ``at``: active (approved where approval is needed,
        not ended) and ``start_time <= at < end_time``."""
        return self._select(Cond("model_id", "==", model_id), Cond("start_time", "<=", at),
                            Cond("end_time", ">", at), Cond("status", "==", "active"), order=newest("start_time"))

    def list(self, model_id: str | None = None, include_expired: bool = True,
             at: datetime | None = None) -> list[AlertSuppression]:
        """Rules by ``start_time``, newest first; ``include_expired=False`` keeps those not
        ended early whose ``end_time`` is after ``at`` (default: now)."""
        where = [Cond("model_id", "==", model_id)] if model_id else []
        if not include_expired:
            where += [Cond("end_time", ">", at or clock.now()), Cond("status", "!=", "expired")]
        return self._select(*where, order=newest("start_time"))


class Deliveries(DocumentRepository[AlertDelivery]):
    """``alert_deliveries``: the notification outbox (:mod:`monitoring_core.alerts.outbox`)."""

    collection = Collection(
        "alert_deliveries", AlertDelivery, "delivery_id",
        fields=(Field("status"), Field("not_before", "time"), Field("kind"), Field("digest_day"),
                Field("alert_ids", "tags"), Field("created_at", "time")),
        indexes=(
            Index((("status", ASC), ("not_before", ASC))),
            Index((("alert_ids", ASC),)),
            Index((("kind", ASC), ("digest_day", ASC), ("status", ASC))),
        ))

    def due(self, at: datetime, limit: int | None = None) -> list[AlertDelivery]:
        """Pending deliveries whose ``not_before`` is at or before ``at``, oldest first."""
        return self._select(Cond("status", "==", DeliveryStatus.PENDING.value), Cond("not_before", "<=", at),
                            order=(("not_before", ASC),), limit=limit)

    def claim(self, delivery_id: str, owner: str, at: datetime, until: datetime) -> AlertDelivery | None:
        """Take a due delivery for ``owner`` until ``until``: a compare-and-set on its revision,
        so of two claimers exactly one gets it (the other gets None). The claim moves
        ``not_before`` to ``until``, so a claimer that dies leaves it due again then."""
        row = self.driver.load(self.collection, delivery_id)
        if row is None:
            return None
        current = self._parse(row)
        if current.status != DeliveryStatus.PENDING or current.not_before > at:
            return None
        claimed = current.model_copy(update={"claimed_by": owner, "claim_expires_at": until, "not_before": until})
        return claimed if self.driver.replace(self.collection, claimed, row.rev) else None

    def for_alert(self, alert_id: str) -> list[AlertDelivery]:
        return self._select(Cond("alert_ids", "has", alert_id), order=(("created_at", ASC),))

    def held_for_digest(self, day: str) -> list[AlertDelivery]:
        """Digest items of ``day`` (YYYY-MM-DD) not yet carried by a digest."""
        return self._select(Cond("kind", "==", DeliveryKind.DIGEST_ITEM.value), Cond("digest_day", "==", day),
                            Cond("status", "==", DeliveryStatus.HELD.value), order=(("created_at", ASC),))


@dataclass(frozen=True)
class ChainTip:
    """A stored audit entry's link (its seq and hash): enough to append after it even when
    its document is damaged."""

    seq: int
    hash: str | None


@dataclass(frozen=True)
class DamagedEntry:
    """An audit entry whose stored document cannot be read back."""

    seq: int
    hash: str | None
    reason: str


Sealer = Callable[[AuditEntry, ChainTip | None], AuditEntry]


class AuditLog(Repository[AuditEntry]):
    """``monitoring_audit_logs``: append-only, keyed by ``seq``, with ``prev_hash`` unique
    too, so two writers that read the same tip cannot both link to it: one wins, the other
    reads the new tip and seals again (on SQLite the append is one write transaction, so
    that never happens). There is no update; deletion is retention's alone
    (:meth:`delete_through`, after an anchor is stored). No TTL index: MongoDB expiring
    entries on its own would leave no anchor, and the chain would no longer verify."""

    collection = Collection(
        "monitoring_audit_logs", AuditEntry, "seq", id_kind="int", append_only=True,
        fields=(Field("event_type"), Field("timestamp", "time"), Field("target.model_id"), Field("actor.user_id"),
                Field("hash"), Field("prev_hash")),
        indexes=(
            Index((("event_type", ASC), ("timestamp", DESC))),
            Index((("target.model_id", ASC), ("timestamp", DESC))),
            Index((("actor.user_id", ASC), ("timestamp", DESC))),
            Index((("timestamp", ASC),)),
            Index((("prev_hash", ASC),), unique=True, name="one_successor"),
        ))

    def append(self, entry: AuditEntry, seal: Sealer) -> AuditEntry:
        """Append atomically: ``seal(entry, tip)`` sets seq/prev_hash/hash from the last
        stored entry; a writer that lost the race to another retries on the new tip."""
        for _ in range(WRITE_ATTEMPTS):
            with self.driver.atomic():
                sealed = seal(entry, self.tip())
                try:
                    self.driver.insert(self.collection, sealed)
                except DuplicateKey:
                    continue
            return sealed
        raise StoreUnavailable(f"could not append to the audit log: {WRITE_ATTEMPTS} attempts lost the race to "
                               "other writers; try again")

    def tip(self) -> ChainTip | None:
        """The last entry's seq and hash, read without parsing its document."""
        return self._link(Query(order=(("seq", DESC),), limit=1))

    def link_at(self, seq: int) -> ChainTip | None:
        """Entry ``seq``'s link as stored, or None."""
        return self._link(Query((Cond("seq", "==", seq),)))

    def _link(self, query: Query) -> ChainTip | None:
        rows = self.driver.query(self.collection, query)
        return ChainTip(rows[0].id, rows[0].fields.get("hash")) if rows else None

    def first_since(self, moment: datetime) -> int | None:
        """The lowest seq whose ``timestamp`` is at or after ``moment`` (None if none)."""
        rows = self.driver.query(self.collection, Query(time_range("timestamp", moment, None), (("seq", ASC),), 1))
        return rows[0].id if rows else None

    def delete_through(self, seq: int) -> int:
        """Remove entries up to ``seq`` (retention only: store the anchor first)."""
        return self.driver.delete(self.collection, (Cond("seq", "<=", seq),))

    def last(self) -> AuditEntry | None:
        rows = self.driver.query(self.collection, Query(order=(("seq", DESC),), limit=1))
        return self._parse(rows[0]) if rows else None

    def list(self, start: datetime | None = None, end: datetime | None = None,
             event_types: Sequence[str] | None = None, model_id: str | None = None,
             user_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries by ``seq``, newest first."""
        where = [*time_range("timestamp", start, end), *is_in("event_type", event_types)]
        where += [Cond(path, "==", value) for path, value in (("target.model_id", model_id),
                                                               ("actor.user_id", user_id)) if value]
        return self._select(*where, order=(("seq", DESC),), limit=limit)

    def iter_chain(self, since: datetime | None = None,
                   batch_size: int = 5000) -> Iterator[tuple[int, AuditEntry | DamagedEntry]]:
        """``(stored seq, entry)`` for every entry (with ``timestamp >= since``) in ``seq``
        order. The stored seq is where the entry sits, whatever its document says; an entry
        that cannot be read back comes as a :class:`DamagedEntry` instead of stopping."""
        after = 0
        while True:
            where = (Cond("seq", ">", after), *time_range("timestamp", since, None))
            rows = self.driver.query(self.collection, Query(where, (("seq", ASC),), batch_size))
            if not rows:
                return
            for row in rows:
                try:
                    yield row.id, self._parse(row)
                except StoreDamaged as exc:
                    yield row.id, DamagedEntry(row.id, row.fields.get("hash"), str(exc))
            after = rows[-1].id


class AuditCheckpoints(Repository[AuditCheckpoint]):
    """``audit_checkpoints``: the signed ``tip`` and ``anchor`` of the audit log, kept
    outside its collection. Both only move forward."""

    collection = Collection("audit_checkpoints", AuditCheckpoint, "name", fields=(Field("seq", "int"),))

    def advance(self, checkpoint: AuditCheckpoint) -> None:
        """Store ``checkpoint`` unless the stored one is already at or past its seq
        (concurrent appenders may finish out of order)."""
        for _ in range(WRITE_ATTEMPTS):
            row = self.driver.load(self.collection, checkpoint.name)
            try:
                if row is None:
                    self.driver.insert(self.collection, checkpoint)
                    return
            except DuplicateKey:
                continue  # another appender created it meanwhile: compare with it
            if (row.fields.get("seq") or 0) >= checkpoint.seq or self.driver.replace(self.collection, checkpoint,
                                                                                     row.rev):
                return
        raise StoreUnavailable(f"could not store the audit {checkpoint.name} checkpoint: too many concurrent writers")


class Models(DocumentRepository[RegisteredModel]):
    """The model registry: risk level, positive class and monitoring settings per model."""

    collection = Collection("models", RegisteredModel, "model_id")

    def upsert(self, model: Mapping[str, Any] | RegisteredModel) -> RegisteredModel:
        model = validated(RegisteredModel, model)
        for _ in range(WRITE_ATTEMPTS):
            row = self.driver.load(self.collection, model.model_id)
            try:
                if row is None:
                    self.driver.insert(self.collection, model)
                    return model
            except DuplicateKey:
                continue  # registered meanwhile: replace it below on the next attempt
            if self.driver.replace(self.collection, model, row.rev):
                return model
        raise StoreUnavailable(f"could not save model {model.model_id!r}: too many concurrent writers")

    def get(self, model_id: str) -> RegisteredModel:
        model = self.find(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not registered")
        return model

    def list(self) -> list[RegisteredModel]:
        return self._select(order=(("model_id", ASC),))


class Users(DocumentRepository[User]):
    """``users``: the app's accounts and roles (passwords as bcrypt hashes)."""

    collection = Collection("users", User, "username", fields=(Field("role"), Field("disabled", "bool")))

    def list(self, include_disabled: bool = True) -> list[User]:
        conds = () if include_disabled else (Cond("disabled", "==", False),)
        return self._select(*conds, order=(("username", ASC),))


# -- the scheduler's execution history and monthly baseline reviews ---------------------------


class Executions(DocumentRepository[JobExecution]):
    """``scheduler_executions``: one document per job run (:mod:`monitoring_core.scheduler`)."""

    collection = Collection(
        "scheduler_executions", JobExecution, "check_id",
        fields=(Field("job_id"), Field("model_id"), Field("status"), Field("queued_at", "time")),
        indexes=(
            Index((("job_id", ASC), ("queued_at", DESC))),
            Index((("model_id", ASC), ("queued_at", DESC))),
            Index((("status", ASC), ("queued_at", DESC))),
            Index((("queued_at", ASC),)),
        ))

    def claim(self, execution: JobExecution) -> bool:
        """Insert ``execution``; False, writing nothing, if its ``check_id`` is taken (another
        scheduler claimed the same slot first)."""
        try:
            self.driver.insert(self.collection, validated(JobExecution, execution))
        except DuplicateKey:
            return False
        return True

    def list(self, model_id: str | None = None, statuses: Sequence[str] | None = None,
             job_id: str | None = None, since: datetime | None = None, limit: int | None = None) -> list[JobExecution]:
        """Executions by ``queued_at``, newest first."""
        where = [Cond(path, "==", value) for path, value in (("model_id", model_id), ("job_id", job_id)) if value]
        return self._select(*where, *is_in("status", statuses), *time_range("queued_at", since, None),
                            order=newest("queued_at"), limit=limit)


class BaselineReviews(DocumentRepository[BaselineReview]):
    """``baseline_reviews``: the monthly review of every model's active baseline."""

    collection = Collection("baseline_reviews", BaselineReview, "review_id",
                            fields=(Field("created_at", "time"),),
                            indexes=(Index((("created_at", DESC),)),))

    def list(self, limit: int | None = None) -> list[BaselineReview]:
        """Reviews, newest first."""
        return self._select(order=newest("created_at"), limit=limit)
# ---------------------------------------------------------------------------------------
# Leases


class LeaseHeld(Conflict):
    """``acquire`` was refused because someone else holds the lease; ``lease`` is theirs."""

    def __init__(self, lease: Lease, message: str | None = None):
        self.lease = lease
        super().__init__(message or f"{lease.key!r} is {describe_holder(lease)}")


class LeaseLost(Conflict):
    """A renew or release by a holder whose lease is gone: it expired and was taken over or
    released. ``lease`` is whoever holds it now (None if nobody)."""

    def __init__(self, key: str, lease: Lease | None):
        self.key, self.lease = key, lease
        now_held = f"it is now {describe_holder(lease)}" if lease else "nobody holds it now"
        super().__init__(f"the lease {key!r} was lost: it expired and was taken over or released ({now_held}); "
                         "work done under it may have overlapped with another holder's")


def describe_holder(lease: Lease) -> str:
    """``held by alice (pid 4242 on host-a: cli analyze) since ... UTC, until ... UTC``."""
    holder = lease.holder
    doing = f": {holder.note}" if holder.note else ""
    return (f"held by {holder.started_by} (pid {holder.pid} on {holder.host}{doing}) since "
            f"{lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC, until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC")


class Leases(Repository[Lease]):
    """``leases``: "one at a time" with an owner and an expiry (see :mod:`monitoring_core.models.lease`).

    The key is the document id, so of two first acquisitions one insert wins and the other
    gets ``DuplicateKey`` on both backends; taking over an expired lease, and renewing, are
    replaces checked against the revision just read, so of two takeovers one wins. Times
    come from the caller (``clock.now()``), never from the database.
    """

    collection = Collection("leases", Lease, "key", fields=(Field("owner"),))

    def acquire(self, key: str, owner: str, ttl: timedelta, holder: LeaseHolder, now: datetime) -> Lease:
        """Take the lease ``key`` for ``owner`` until ``now + ttl``.

        Raises
        ------
        LeaseHeld
            (a ``Conflict``) someone holds an unexpired lease on ``key``, the same owner
            included: a lease is not re-entrant. The message names the holder and since when.
        """
        lease = validated(Lease, {"key": key, "owner": owner, "holder": holder, "acquired_at": now,
                                  "renewed_at": now, "expires_at": now + positive_ttl(ttl)})
        for _ in range(WRITE_ATTEMPTS):
            with self.driver.atomic():
                row = self.driver.load(self.collection, key)
                if row is None:
                    try:
                        self.driver.insert(self.collection, lease)
                    except DuplicateKey:
                        continue  # another holder inserted first: read its lease
                    return lease
                current = self._parse(row)
                if current.is_held_at(now):
                    raise LeaseHeld(current)
                if self.driver.replace(self.collection, lease, row.rev):
                    return lease
        raise StoreUnavailable(f"could not acquire the lease {key!r}: {WRITE_ATTEMPTS} attempts lost the race to "
                               "other holders; try again")

    def renew(self, key: str, owner: str, ttl: timedelta, now: datetime) -> Lease:
        """Extend ``owner``'s lease to ``now + ttl``; ``LeaseLost`` if it is not theirs any more."""
        ttl = positive_ttl(ttl)
        for _ in range(WRITE_ATTEMPTS):
            with self.driver.atomic():
                row, current = self._owned(key, owner)
                renewed = validated(Lease, {**current.model_dump(), "renewed_at": now, "expires_at": now + ttl})
                if self.driver.replace(self.collection, renewed, row.rev):
                    return renewed
        raise StoreUnavailable(f"could not renew the lease {key!r}: {WRITE_ATTEMPTS} attempts lost the race to "
                               "other writers; try again")

    def release(self, key: str, owner: str) -> bool:
        """Give up ``owner``'s lease: True if it was released, False if there was none (a
        second release is harmless); ``LeaseLost`` if another owner holds it now."""
        with self.driver.atomic():
            if self.driver.delete(self.collection, (Cond("key", "==", key), Cond("owner", "==", owner))):
                return True
            row = self.driver.load(self.collection, key)
            if row is None:
                return False
            raise LeaseLost(key, self._parse(row))

    def holder(self, key: str, now: datetime) -> Lease | None:
        """The lease on ``key`` in force at ``now``, or None (never taken, released, expired)."""
        lease = self.find(key)
        return lease if lease is not None and lease.is_held_at(now) else None

    def _owned(self, key: str, owner: str) -> tuple[Row, Lease]:
        row = self.driver.load(self.collection, key)
        current = None if row is None else self._parse(row)
        if current is None or current.owner != owner:
            raise LeaseLost(key, current)
        return row, current


def positive_ttl(ttl: timedelta) -> timedelta:
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise InvalidInput(f"a lease's ttl must be a positive timedelta, got {ttl!r}")
    return ttl


#: The document collections of every store, by the attribute that holds them.
DOCUMENT_REPOSITORIES: dict[str, type[Repository]] = {
    "baselines": Baselines, "records": Records, "incidents": Incidents, "alerts": Alerts,
    "suppressions": Suppressions, "audit": AuditLog, "models": Models,
    "audit_checkpoints": AuditCheckpoints,
    "leases": Leases,
    "deliveries": Deliveries,
    "executions": Executions,
    "baseline_reviews": BaselineReviews,
    "users": Users,
}
