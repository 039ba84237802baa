"""MongoDB (or Atlas) through pymongo: the production backend, chosen by ``MONGODB_URI``.

Collections and indexes follow the source schema (file 000). Each document's business id
(``prediction_id``, ``incident_id``...) is also its ``_id``, so uniqueness costs no extra
index and a retried batch cannot write a prediction twice. Retention is enforced by TTL
indexes; the alerts' TTL is partial so CRITICAL alerts are kept forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import pandas as pd
import pymongo
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import (BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError,
                            ServerSelectionTimeoutError)

from ..errors import Conflict, InvalidInput, NotFound, StoreUnavailable
from ..models import columns as col
from ..models.alerts import Alert, AlertSuppression
from ..models.audit import AuditEntry
from ..models.baseline import DriftSnapshot
from ..models.common import Severity
from ..models.incidents import Incident, IncidentStatus
from ..models.predictions import PredictionLog
from ..models.record import MonitoringRecord
from ..models.registry import RegisteredModel
from . import base
from .frames import documents_to_frame, frame_to_documents, normalise_dtypes
from .retention import RetentionPolicy

DUPLICATE_KEY = 11000
REVISION = "_rev"
AUDIT_APPEND_ATTEMPTS = 50


@contextlib.contextmanager
def _errors(what: str):
    """pymongo's exceptions as Fairwatch's (a lost server is StoreUnavailable)."""
    try:
        yield
    except DuplicateKeyError as exc:
        key = (exc.details or {}).get("keyValue") or exc
        raise Conflict(f"{what}: duplicate key {key}") from None
    except ServerSelectionTimeoutError:
        raise StoreUnavailable(f"{what}: MongoDB is unreachable (check MONGODB_URI and the network)") from None
    except PyMongoError as exc:
        raise StoreUnavailable(f"{what}: MongoDB error: {exc}") from None


def _stored(doc) -> dict[str, Any]:
    """A pydantic document as BSON-ready data (datetimes stay datetimes)."""
    return doc.model_dump(mode="python", by_alias=True)


def _loaded(model, raw: Mapping[str, Any] | None):
    if raw is None:
        return None
    data = {k: v for k, v in raw.items() if k not in ("_id", REVISION)}
    return model.model_validate(data)


class _Docs:
    """A collection of one document type with its id as ``_id`` and a revision counter for
    compare-and-set updates."""

    def __init__(self, collection, model, id_field: str):
        self.c, self.model, self.id_field = collection, model, id_field

    def insert(self, doc):
        doc = base.validated(self.model, doc)
        doc_id = getattr(doc, self.id_field)
        try:
            with _errors(f"inserting {self.model.__name__}"):
                self.c.insert_one({"_id": doc_id, **_stored(doc), REVISION: 1})
        except Conflict as exc:
            if self.c.find_one({"_id": doc_id}, {"_id": 1}) is None:  # another unique index refused it
                raise Conflict(f"{self.model.__name__} refused by a unique index ({exc}); nothing was written"
                               ) from None
            raise Conflict(f"a {self.model.__name__} with {self.id_field} {doc_id!r} already exists; "
                           "nothing was written") from None
        return doc

    def find(self, doc_id):
        with _errors(f"reading {self.model.__name__}"):
            return _loaded(self.model, self.c.find_one({"_id": doc_id}))

    def select(self, query: dict, sort: list | None = None, limit: int | None = None) -> list:
        with _errors(f"listing {self.model.__name__}"):
            cursor = self.c.find(query)
            if sort:
                cursor = cursor.sort(sort)
            if limit is not None:
                cursor = cursor.limit(int(limit))
            return [_loaded(self.model, d) for d in cursor]

    def compare_and_set(self, repo: base.DocumentRepository, doc_id, changes, expect):
        with _errors(f"updating {self.model.__name__}"):
            raw = self.c.find_one({"_id": doc_id})
            if raw is None:
                raise NotFound(f"no {self.model.__name__} with {self.id_field} {doc_id!r}")
            current = _loaded(self.model, raw)
            for name, wanted in expect.items():
                if getattr(current, name) != wanted:
                    raise Conflict(f"{self.model.__name__} {doc_id!r} has {name}={getattr(current, name)!s}, "
                                   f"expected {wanted!s}; it was changed by someone else — reload and try again")
            updated = repo._merged(current, changes)
            revision = raw.get(REVISION, 0)
            result = self.c.replace_one({"_id": doc_id, REVISION: raw.get(REVISION)},
                                        {"_id": doc_id, **_stored(updated), REVISION: revision + 1})
            if result.matched_count == 0:
                raise Conflict(f"{self.model.__name__} {doc_id!r} was changed by someone else meanwhile; "
                               "reload and try again")
        return updated


def _in(values) -> dict:
    return {"$in": [str(v) for v in values]}


class _Delegating:
    """The document operations every repository shares, done by its ``_Docs``."""

    d: _Docs

    def insert(self, doc):
        return self.d.insert(doc)

    def find(self, doc_id):
        return self.d.find(doc_id)

    def _compare_and_set(self, doc_id, changes, expect):
        return self.d.compare_and_set(self, doc_id, changes, expect)


class MongoBaselines(_Delegating, base.BaselineRepository):
    def __init__(self, db):
        self.d = _Docs(db.drift_snapshots, DriftSnapshot, "snapshot_id")

    def insert(self, doc):
        try:
            return self.d.insert(doc)
        except Conflict as exc:
            if "unique index" in str(exc):
                raise Conflict(f"model {doc.model_id!r} already has an active baseline; "
                               "insert this one inactive and activate it") from None
            raise

    def active(self, model_id):
        found = self.d.select({"model_id": model_id, "is_active": True}, limit=1)
        return found[0] if found else None

    def list(self, model_id=None):
        return self.d.select({"model_id": model_id} if model_id else {},
                             sort=[("created_at", DESCENDING), ("_id", ASCENDING)])

    def activate(self, snapshot_id, at):
        target = self.get(snapshot_id)
        with _errors("activating a baseline"):
            self.d.c.update_many({"model_id": target.model_id, "is_active": True, "_id": {"$ne": snapshot_id}},
                                 {"$set": {"is_active": False, "archived_at": at}, "$inc": {REVISION: 1}})
            self.d.c.update_one({"_id": snapshot_id},
                                {"$set": {"is_active": True, "archived_at": None}, "$inc": {REVISION: 1}})
        return self.get(snapshot_id)


class MongoRecords(_Delegating, base.RecordRepository):
    def __init__(self, db):
        self.d = _Docs(db.monitoring_records, MonitoringRecord, "record_id")

    def list(self, model_id, start=None, end=None, limit=None):
        query: dict[str, Any] = {"model_id": model_id}
        span = {k: v for k, v in (("$gte", start), ("$lt", end)) if v is not None}
        if span:
            query["timestamp"] = span
        return self.d.select(query, sort=[("timestamp", DESCENDING), ("_id", ASCENDING)], limit=limit)

    def purge_before(self, cutoff):
        with _errors("purging monitoring records"):
            return self.d.c.delete_many({"timestamp": {"$lt": cutoff}}).deleted_count


def _listing(model_id, statuses, severities, since) -> dict:
    query: dict[str, Any] = {}
    if model_id:
        query["model_id"] = model_id
    if statuses:
        query["status"] = _in(statuses)
    if severities:
        query["severity"] = _in(severities)
    if since is not None:
        query["created_at"] = {"$gte": since}
    return query


NEWEST = [("created_at", DESCENDING), ("_id", ASCENDING)]


class MongoIncidents(_Delegating, base.IncidentRepository):
    def __init__(self, db):
        self.d = _Docs(db.incidents, Incident, "incident_id")

    def list(self, model_id=None, statuses=None, severities=None, since=None, limit=None):
        return self.d.select(_listing(model_id, statuses, severities, since), sort=NEWEST, limit=limit)

    def open_for(self, model_id, metric_name):
        found = self.d.select({"model_id": model_id, "metrics_triggered.metric_name": metric_name,
                               "status": _in([IncidentStatus.OPEN, IncidentStatus.INVESTIGATING])},
                              sort=NEWEST, limit=1)
        return found[0] if found else None


class MongoAlerts(_Delegating, base.AlertRepository):
    def __init__(self, db):
        self.d = _Docs(db.alerts, Alert, "alert_id")

    def list(self, model_id=None, statuses=None, severities=None, since=None, limit=None):
        return self.d.select(_listing(model_id, statuses, severities, since), sort=NEWEST, limit=limit)

    def recent(self, model_id, metric_name, severity, since):
        found = self.d.select({"model_id": model_id, "metric_name": metric_name, "severity": str(severity),
                               "created_at": {"$gte": since}}, sort=NEWEST, limit=1)
        return found[0] if found else None

    def purge_before(self, cutoff):
        with _errors("purging alerts"):
            return self.d.c.delete_many({"created_at": {"$lt": cutoff},
                                         "severity": {"$ne": Severity.CRITICAL.value}}).deleted_count


class MongoSuppressions(_Delegating, base.SuppressionRepository):
    def __init__(self, db):
        self.d = _Docs(db.alert_suppressions, AlertSuppression, "suppression_id")

    def active(self, model_id, at):
        return self.d.select({"model_id": model_id, "start_time": {"$lte": at}, "end_time": {"$gt": at}},
                             sort=[("start_time", DESCENDING), ("_id", ASCENDING)])

    def list(self, model_id=None, include_expired=True, at=None):
        query: dict[str, Any] = {"model_id": model_id} if model_id else {}
        if not include_expired:
            from ..clock import now
            query["end_time"] = {"$gt": at or now()}
        return self.d.select(query, sort=[("start_time", DESCENDING), ("_id", ASCENDING)])


class MongoAudit(base.AuditRepository):
    """Entries keyed by ``seq``: two writers that read the same last entry race for the
    same ``_id``, one wins, and the other re-reads and seals again."""

    def __init__(self, db):
        self.c = db.monitoring_audit_logs

    def append(self, entry, seal):
        for _ in range(AUDIT_APPEND_ATTEMPTS):
            last = self.last()
            sealed = seal(entry, last)
            try:
                with _errors("appending to the audit log"):
                    self.c.insert_one({"_id": sealed.seq, **_stored(sealed)})
                return sealed
            except Conflict:
                continue
        raise StoreUnavailable("could not append to the audit log: too many concurrent writers")

    def last(self):
        with _errors("reading the audit log"):
            return _loaded(AuditEntry, self.c.find_one(sort=[("_id", DESCENDING)]))

    def list(self, start=None, end=None, event_types=None, model_id=None, user_id=None, limit=None):
        query: dict[str, Any] = {}
        span = {k: v for k, v in (("$gte", start), ("$lt", end)) if v is not None}
        if span:
            query["timestamp"] = span
        if event_types:
            query["event_type"] = _in(event_types)
        if model_id:
            query["target.model_id"] = model_id
        if user_id:
            query["actor.user_id"] = user_id
        with _errors("reading the audit log"):
            cursor = self.c.find(query).sort([("_id", DESCENDING)])
            if limit is not None:
                cursor = cursor.limit(int(limit))
            return [_loaded(AuditEntry, d) for d in cursor]

    def iter_chain(self, batch_size=5000):
        after = 0
        while True:
            with _errors("reading the audit log"):
                batch = list(self.c.find({"_id": {"$gt": after}}).sort([("_id", ASCENDING)]).limit(batch_size))
            if not batch:
                return
            for raw in batch:
                yield _loaded(AuditEntry, raw)
            after = batch[-1]["_id"]

    def purge_before(self, cutoff):
        with _errors("purging the audit log"):
            return self.c.delete_many({"timestamp": {"$lt": cutoff}}).deleted_count


class MongoModels(base.ModelRepository):
    def __init__(self, db):
        self.c = db.models

    def upsert(self, model):
        model = base.validated(RegisteredModel, model)
        with _errors("saving a model"):
            self.c.replace_one({"_id": model.model_id}, {"_id": model.model_id, **_stored(model)}, upsert=True)
        return model

    def find(self, model_id):
        with _errors("reading a model"):
            return _loaded(RegisteredModel, self.c.find_one({"_id": model_id}))

    def list(self):
        with _errors("listing models"):
            return [_loaded(RegisteredModel, d) for d in self.c.find().sort([("_id", ASCENDING)])]


class MongoPredictions(base.PredictionRepository):
    def __init__(self, db):
        self.c = db.prediction_logs
        self.fields = db.prediction_fields
        self._known_fields: set[tuple[str, str]] = set()

    def insert_frame(self, frame):
        if frame.empty:
            return base.InsertReport(0)
        frame = normalise_dtypes(frame.reset_index(drop=True))
        for required in (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION, col.TIMESTAMP):
            if required not in frame or frame[required].isna().any():
                raise InvalidInput(f"every prediction needs {required!r}")
        documents = frame_to_documents(frame)
        for doc in documents:
            doc["_id"] = doc.pop(col.PREDICTION_ID)
        duplicates: list[str] = []
        with _errors("writing predictions"):
            try:
                inserted = len(self.c.insert_many(documents, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                if others:
                    raise StoreUnavailable(f"writing predictions failed: {others[0].get('errmsg')}") from None
                duplicates = [e["op"]["_id"] for e in errors]
                inserted = exc.details.get("nInserted", len(documents) - len(duplicates))
            self._register_columns(frame)
        return base.InsertReport(inserted, duplicates)

    def _register_columns(self, frame: pd.DataFrame) -> None:
        for model_id in frame[col.MODEL_ID].unique():
            rows = frame.loc[frame[col.MODEL_ID] == model_id]
            present = [c for c in rows.columns if c != col.MODEL_ID and rows[c].notna().any()]
            for name in present:
                if (model_id, name) in self._known_fields:
                    continue
                self.fields.update_one({"_id": f"{model_id}\x1f{name}"},
                                       {"$setOnInsert": {"model_id": model_id, "column": name}}, upsert=True)
                self._known_fields.add((model_id, name))

    def window(self, model_id, start, end, columns):
        columns = list(dict.fromkeys(columns))
        paths = {c: ("_id" if c == col.PREDICTION_ID else c) for c in columns}
        projection = {p: 1 for p in paths.values()}
        projection.setdefault("_id", 0)
        with _errors("reading predictions"):
            cursor = self.c.find({"model_id": model_id, "timestamp": {"$gte": start, "$lt": end}}, projection) \
                .sort([("timestamp", ASCENDING), ("_id", ASCENDING)]).batch_size(10_000)
            raw = list(cursor)
        frame = documents_to_frame(raw, [paths[c] for c in columns])
        frame.columns = columns
        return normalise_dtypes(frame)

    def columns(self, model_id):
        with _errors("reading prediction columns"):
            return sorted(d["column"] for d in self.fields.find({"model_id": model_id}))

    def model_ids(self):
        with _errors("listing models"):
            return sorted(self.c.distinct("model_id"))

    def count(self, model_id, start=None, end=None):
        query: dict[str, Any] = {"model_id": model_id}
        span = {k: v for k, v in (("$gte", start), ("$lt", end)) if v is not None}
        if span:
            query["timestamp"] = span
        with _errors("counting predictions"):
            return self.c.count_documents(query)

    def summary(self, model_id):
        with _errors("summarising predictions"):
            count = self.c.count_documents({"model_id": model_id})
            labelled = self.c.count_documents({"model_id": model_id, "ground_truth": {"$ne": None}})
            first = self.c.find_one({"model_id": model_id}, {"timestamp": 1}, sort=[("timestamp", ASCENDING)])
            last = self.c.find_one({"model_id": model_id}, {"timestamp": 1}, sort=[("timestamp", DESCENDING)])
            versions = sorted(v for v in self.c.distinct("model_version", {"model_id": model_id}) if v)

        def stamp(doc):
            if doc is None:
                return None
            value = doc["timestamp"]
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return base.PredictionSummary(model_id, count, labelled, stamp(first), stamp(last), versions)

    def find(self, prediction_id):
        with _errors("reading a prediction"):
            raw = self.c.find_one({"_id": prediction_id})
        if raw is None:
            return None
        data = {k: v for k, v in raw.items() if k != "_id"}
        return PredictionLog.model_validate({"prediction_id": raw["_id"], **data})

    def record_ground_truth(self, model_id, labels, at):
        ids = list(labels)
        with _errors("recording ground truth"):
            known = {d["_id"] for d in self.c.find({"_id": {"$in": ids}, "model_id": model_id}, {"_id": 1})}
            by_label: dict[str, list[str]] = {}
            for pid in ids:
                if pid in known:
                    by_label.setdefault(str(labels[pid]), []).append(pid)
            # One update per distinct label (a handful of classes), not one per prediction.
            for label, members in by_label.items():
                self.c.update_many({"_id": {"$in": members}},
                                   {"$set": {"ground_truth": label, "ground_truth_timestamp": at}})
        return base.GroundTruthReport(sum(map(len, by_label.values())), [pid for pid in ids if pid not in known])

    def purge_before(self, cutoff):
        with _errors("purging predictions"):
            return self.c.delete_many({"timestamp": {"$lt": cutoff}}).deleted_count


def _index_specs(retention: RetentionPolicy) -> dict[str, list[tuple[list, dict]]]:
    """Indexes of schema file 000 (plus the ones our queries need), per collection.

    The schema's single-field ``{timestamp: -1}`` indexes are served by the TTL index
    ``{timestamp: 1}`` (an index is read in both directions), so they are not duplicated.
    """
    ttl = retention.seconds()
    return {
        "prediction_logs": [
            ([("model_id", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("metadata.user_id", ASCENDING)], {}),
            ([("timestamp", ASCENDING)], {"expireAfterSeconds": ttl["prediction_logs"], "name": "ttl_timestamp"}),
        ],
        "prediction_fields": [([("model_id", ASCENDING)], {})],
        "drift_snapshots": [
            ([("model_id", ASCENDING), ("is_active", ASCENDING)], {}),
            ([("snapshot_id", ASCENDING)], {"unique": True}),
            ([("model_id", ASCENDING)], {"unique": True, "name": "one_active_per_model",
                                         "partialFilterExpression": {"is_active": True}}),
        ],
        "monitoring_records": [
            ([("record_id", ASCENDING)], {"unique": True}),
            ([("model_id", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("max_severity", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("analysis_period.start", ASCENDING), ("analysis_period.end", ASCENDING)], {}),
            ([("timestamp", ASCENDING)], {"expireAfterSeconds": ttl["monitoring_records"], "name": "ttl_timestamp"}),
        ],
        "incidents": [
            ([("incident_id", ASCENDING)], {"unique": True}),
            ([("status", ASCENDING), ("severity", ASCENDING), ("created_at", DESCENDING)], {}),
            ([("model_id", ASCENDING), ("created_at", DESCENDING)], {}),
            ([("assigned_to", ASCENDING), ("status", ASCENDING)], {}),
            ([("model_id", ASCENDING), ("metrics_triggered.metric_name", ASCENDING)], {}),
        ],
        "alerts": [
            ([("alert_id", ASCENDING)], {"unique": True}),
            ([("incident_id", ASCENDING)], {}),
            ([("model_id", ASCENDING), ("metric_name", ASCENDING), ("severity", ASCENDING),
              ("created_at", DESCENDING)], {}),
            ([("status", ASCENDING), ("severity", ASCENDING), ("created_at", DESCENDING)], {}),
            # Partial TTL sparing CRITICAL: partial indexes accept neither $ne nor (before
            # MongoDB 6) $in, but "INFO" and "WARNING" both sort after "CRITICAL".
            ([("created_at", ASCENDING)], {"expireAfterSeconds": ttl["alerts"], "name": "ttl_created_at_noncritical",
                                           "partialFilterExpression": {"severity": {"$gt": Severity.CRITICAL.value}}}),
        ],
        "alert_suppressions": [
            ([("suppression_id", ASCENDING)], {"unique": True}),
            ([("model_id", ASCENDING), ("start_time", ASCENDING), ("end_time", ASCENDING)], {}),
            ([("end_time", ASCENDING)], {}),
        ],
        "monitoring_audit_logs": [
            ([("event_type", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("target.model_id", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("actor.user_id", ASCENDING), ("timestamp", DESCENDING)], {}),
            ([("timestamp", ASCENDING)], {"expireAfterSeconds": ttl["monitoring_audit_logs"],
                                          "name": "ttl_timestamp"}),
        ],
        "models": [],
    }


class MongoStore(base.Store):
    def __init__(self, client, database: str, retention: RetentionPolicy | None = None, description: str = ""):
        self.client = client
        self.db = client[database]
        self.retention = retention or RetentionPolicy()
        self.predictions = MongoPredictions(self.db)
        self.baselines = MongoBaselines(self.db)
        self.records = MongoRecords(self.db)
        self.incidents = MongoIncidents(self.db)
        self.alerts = MongoAlerts(self.db)
        self.suppressions = MongoSuppressions(self.db)
        self.audit = MongoAudit(self.db)
        self.models = MongoModels(self.db)
        self.description = description or f"MongoDB database {database!r}"

    @classmethod
    def connect(cls, uri: str, database: str, timeout_ms: int = 5000,
                retention: RetentionPolicy | None = None) -> MongoStore:
        """Connect and check the server answers; a clear ``StoreUnavailable`` if not."""
        try:
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True, tzinfo=UTC,
                                         appname="fairwatch")
            client.admin.command("ping")
        except (PyMongoError, ValueError) as exc:
            raise StoreUnavailable(f"cannot reach MongoDB at {host_of(uri)} within {timeout_ms} ms: "
                                   f"{type(exc).__name__}. Check MONGODB_URI, credentials and network access"
                                   ) from None
        return cls(client, database, retention, description=f"MongoDB at {host_of(uri)}, database {database!r}")

    def ensure_schema(self):
        for name, specs in _index_specs(self.retention).items():
            collection = self.db[name]
            for keys, options in specs:
                with _errors(f"creating indexes on {name}"):
                    try:
                        collection.create_index(keys, **options)
                    except OperationFailure as exc:
                        if "expireAfterSeconds" not in options or exc.code not in (85, 86):
                            raise
                        # Retention changed since the index was made: update it in place.
                        self.db.command("collMod", name, index={"name": options["name"],
                                                                "expireAfterSeconds": options["expireAfterSeconds"]})

    def purge_expired(self, now):
        cutoffs = self.retention.cutoffs(now)
        return base.PurgeReport({
            "prediction_logs": self.predictions.purge_before(cutoffs["prediction_logs"]),
            "monitoring_records": self.records.purge_before(cutoffs["monitoring_records"]),
            "monitoring_audit_logs": self.audit.purge_before(cutoffs["monitoring_audit_logs"]),
            "alerts": self.alerts.purge_before(cutoffs["alerts"]),
        })

    def index_names(self) -> dict[str, list[str]]:
        """Names of the indexes present, per collection (for checks and the status page)."""
        return {name: sorted(self.db[name].index_information()) for name in _index_specs(self.retention)}

    def close(self):
        self.client.close()


def host_of(uri: str) -> str:
    """The host part of a connection string, without credentials."""
    rest = uri.split("://", 1)[-1]
    return rest.split("@")[-1].split("/")[0].split("?")[0]
