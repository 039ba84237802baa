"""MongoDB (or Atlas) through pymongo: the production backend, chosen by ``MONGODB_URI``.

Documents are stored by :class:`MongoDriver` under the shared repositories
(:mod:`.repositories`): each document's business id (``incident_id``, ``seq``...) is its
``_id``, so uniqueness costs no extra index and a retried write cannot store a document
twice; ``_rev`` counts its revisions for compare-and-set. Indexes come from the same
declarations as the embedded store's; retention is enforced by TTL indexes, and the
alerts' TTL is partial so CRITICAL alerts are kept forever.

Baseline activation (archive the active snapshot, activate another) touches two
documents. Multi-document transactions need a replica set, which a standalone server and
mongomock lack, so activation does not rely on them: every write is revision-checked,
the partial unique index ``one_active_per_model`` refuses a second active snapshot at
any moment, and if the final write is refused the snapshots archived just before are
restored. Concurrent activations therefore leave exactly one active snapshot and the
losers get ``Conflict``; only a crash between the two writes can leave a model with no
active baseline for a moment (re-running the activation repairs it).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import pandas as pd
import pymongo
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError

from ..errors import StoreUnavailable
from ..models import columns as col
from ..models.predictions import PredictionLog
from . import base
from .driver import Collection, Cond, Driver, DuplicateKey, Field, Index, IndexInfo, Row, value_at
from .frames import documents_to_frame, frame_to_documents, normalise_dtypes, storable_predictions
from .retention import RetentionPolicy

DUPLICATE_KEY = 11000
REVISION = "_rev"
MONGO_OPS = {"==": "$eq", "has": "$eq", "!=": "$ne", "in": "$in", ">=": "$gte", ">": "$gt", "<": "$lt",
             "<=": "$lte"}


@contextlib.contextmanager
def _errors(what: str):
    """pymongo's exceptions as Fairwatch's (a lost server is StoreUnavailable)."""
    try:
        yield
    except ServerSelectionTimeoutError:
        raise StoreUnavailable(f"{what}: MongoDB is unreachable (check MONGODB_URI and the network)") from None
    except PyMongoError as exc:
        raise StoreUnavailable(f"{what}: MongoDB error: {exc}") from None


def _bson(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_bson(v) for v in value]
    return value


def _index_info(spec: dict[str, Any]) -> IndexInfo:
    """An entry of ``index_information()`` in the drivers' shared form."""
    partial = spec.get("partialFilterExpression")
    return IndexInfo(tuple((path, int(direction)) for path, direction in spec["key"]), bool(spec.get("unique")),
                     None if partial is None else dict(partial), spec.get("expireAfterSeconds"))


class MongoDriver(Driver):
    """Each collection is a MongoDB collection of ``{_id, <document>, _rev}``."""

    expires_documents = True

    def __init__(self, db, retention: RetentionPolicy):
        self.db, self.retention = db, retention

    def _stored(self, c: Collection, doc: BaseModel, rev: int) -> dict[str, Any]:
        # model_dump(mode="python") keeps datetimes as datetimes, which BSON stores natively.
        return {"_id": getattr(doc, c.id_field), **doc.model_dump(mode="python", by_alias=True), REVISION: rev}

    def _row(self, c: Collection, raw: dict[str, Any]) -> Row:
        payload = {k: v for k, v in raw.items() if k not in ("_id", REVISION)}
        return Row(raw["_id"], raw.get(REVISION, 0), payload, {f.path: value_at(raw, f.path) for f in c.fields})

    def _path(self, c: Collection, path: str) -> str:
        return "_id" if path == c.id_field else path

    def _filter(self, c: Collection, conds: Sequence[Cond]) -> dict[str, Any]:
        query: dict[str, dict[str, Any]] = {}
        for cond in conds:
            query.setdefault(self._path(c, cond.path), {})[MONGO_OPS[cond.op]] = _bson(cond.value)
        return query

    # -- schema ------------------------------------------------------------------------

    def _options(self, index: Index) -> dict[str, Any]:
        options: dict[str, Any] = {"unique": True} if index.unique else {}
        if index.name:
            options["name"] = index.name
        if index.where:
            options["partialFilterExpression"] = {
                w.path: _bson(w.value) if w.op == "==" else {MONGO_OPS[w.op]: _bson(w.value)} for w in index.where}
        if index.ttl:
            options["expireAfterSeconds"] = self.retention.seconds()[index.ttl]
        return options

    def ensure_collection(self, c):
        for index in c.indexes:
            with _errors(f"creating indexes on {c.name}"):
                self._ensure_index(self.db[c.name], index, self.expected(c, index))

    def _ensure_index(self, collection, index: Index, wanted: IndexInfo) -> None:
        """Create the index; one with the same keys or name but other options (a changed
        retention period included) is dropped first, since create_index would refuse it.
        Rebuilding rather than ``collMod`` keeps one path that mongomock runs too; it
        happens only when a declaration or a retention setting changes."""
        options = self._options(index)
        for name, spec in collection.index_information().items():
            if name == "_id_" or (_index_info(spec).keys != wanted.keys and name != options.get("name")):
                continue
            if _index_info(spec) == wanted:
                return
            collection.drop_index(name)
        collection.create_index(list(index.keys), **options)

    def expected(self, c, index):
        options = self._options(index)
        return IndexInfo(index.keys, index.unique, options.get("partialFilterExpression"),
                         options.get("expireAfterSeconds"))

    def indexes(self, c):
        with _errors(f"reading the indexes of {c.name}"):
            info = self.db[c.name].index_information()
        return [_index_info(spec) for name, spec in info.items() if name != "_id_"]

    # -- documents -----------------------------------------------------------------------

    def insert(self, c, doc):
        doc_id = getattr(doc, c.id_field)
        with _errors(f"inserting into {c.name}"):
            try:
                self.db[c.name].insert_one(self._stored(c, doc, 1))
            except DuplicateKeyError as exc:
                raise DuplicateKey(c.name, on_id=self._on_id(c, exc, doc_id)) from None

    def _on_id(self, c: Collection, exc: DuplicateKeyError, doc_id: Any) -> bool:
        pattern = (exc.details or {}).get("keyPattern")
        if pattern:
            return "_id" in pattern
        # mongomock does not say which index refused the write: look for the id.
        return self.db[c.name].find_one({"_id": doc_id}, {"_id": 1}) is not None

    def replace(self, c, doc, rev):
        # A document written before revisions were counted has none: {_rev: None} matches it.
        with _errors(f"updating {c.name}"):
            try:
                result = self.db[c.name].replace_one({"_id": getattr(doc, c.id_field), REVISION: rev or None},
                                                     self._stored(c, doc, rev + 1))
            except DuplicateKeyError:
                raise DuplicateKey(c.name, on_id=False) from None
        return result.matched_count == 1

    def load(self, c, doc_id):
        with _errors(f"reading {c.name}"):
            raw = self.db[c.name].find_one({"_id": doc_id})
        return None if raw is None else self._row(c, raw)

    def query(self, c, query):
        order = [(self._path(c, path), direction) for path, direction in query.order]
        if not any(path == "_id" for path, _ in order):
            order.append(("_id", ASCENDING))
        with _errors(f"reading {c.name}"):
            cursor = self.db[c.name].find(self._filter(c, query.where)).sort(order)
            if query.limit is not None:
                cursor = cursor.limit(int(query.limit))
            return [self._row(c, raw) for raw in cursor]

    def delete(self, c, where):
        with _errors(f"deleting from {c.name}"):
            return self.db[c.name].delete_many(self._filter(c, where)).deleted_count

    def close(self):
        self.db.client.close()


class MongoPredictions(base.PredictionRepository):
    def __init__(self, db):
        self.c = db.prediction_logs
        self.fields = db.prediction_fields
        self._known_fields: set[tuple[str, str]] = set()

    def insert_frame(self, frame):
        if frame.empty:
            return base.InsertReport(0)
        frame = storable_predictions(frame)
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


# Declared for their indexes: the documents are written by MongoPredictions.
PREDICTION_COLLECTIONS = (
    Collection("prediction_logs", PredictionLog, "prediction_id",
               fields=(Field("model_id"), Field("timestamp", "time"), Field("metadata.user_id")),
               indexes=(
                   Index((("model_id", ASCENDING), ("timestamp", DESCENDING))),
                   Index((("metadata.user_id", ASCENDING),)),
                   Index((("timestamp", ASCENDING),), ttl="prediction_logs", name="ttl_timestamp"),
               )),
    Collection("prediction_fields", BaseModel, "_id", fields=(Field("model_id"),),
               indexes=(Index((("model_id", ASCENDING),)),)),
)


class MongoStore(base.Store):
    def __init__(self, client, database: str, retention: RetentionPolicy | None = None, description: str = ""):
        self.client = client
        self.db = client[database]
        retention = retention or RetentionPolicy()
        super().__init__(MongoDriver(self.db, retention), MongoPredictions(self.db), retention,
                         description or f"MongoDB database {database!r}")

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

    def collections(self):
        return [*super().collections(), *PREDICTION_COLLECTIONS]


def host_of(uri: str) -> str:
    """The host part of a connection string, without credentials."""
    rest = uri.split("://", 1)[-1]
    return rest.split("@")[-1].split("/")[0].split("?")[0]
