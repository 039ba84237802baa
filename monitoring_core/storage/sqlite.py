"""The embedded default: one SQLite file in WAL mode, no server to install.

Documents (baselines, records, incidents, alerts, suppressions, audit entries, models)
are stored as JSON with their queried fields copied into indexed columns.

Predictions are the hot path and are stored in two parts:

- ``prediction_logs``: one row per prediction with the fields that are looked up or
  updated one at a time (id, model, timestamp, ground truth); its unique index on
  ``prediction_id`` refuses duplicates;
- ``prediction_segments``: the rest, column by column, as compressed Arrow arrays of up to
  262,144 rows. Reading a window of a million predictions then decodes a handful of
  blobs per column instead of building millions of Python objects row by row (about 50x
  faster; see ``benchmarks/bench_ingest.py``). Small batches (the SDK writes every 10
  predictions) are merged as they accumulate, sixteen of a size at a time, so each row is
  rewritten only a few times over its life.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import Conflict, StoreUnavailable
from ..models.alerts import Alert, AlertSuppression
from ..models.audit import AuditEntry
from ..models.baseline import DriftSnapshot
from ..models.common import Severity
from ..models.incidents import Incident, IncidentStatus
from ..models.record import MonitoringRecord
from ..models.registry import RegisteredModel
from . import base
from .retention import RetentionPolicy
from .segments import SqlitePredictions
from .sqlite_db import to_ms

BUSY_TIMEOUT_MS = 15_000


def _translate(exc: sqlite3.Error, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Exception:
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(message)
    if "locked" in message or "busy" in message:
        return StoreUnavailable(f"the database {path} is locked by another process "
                                f"(waited {busy_timeout_ms / 1000:g} s); try again when it finishes")
    if "readonly" in message or "read-only" in message:
        return StoreUnavailable(f"the database {path} is read-only: check the file's and folder's permissions")
    if "unable to open" in message or "disk" in message:
        return StoreUnavailable(f"cannot open the database {path}: {message}")
    if "malformed" in message or "not a database" in message:
        return StoreUnavailable(f"{path} is not a readable Fairwatch database: {message}")
    return StoreUnavailable(f"database error on {path}: {message}")


class _Db:
    """Per-thread connections to one file, and transactions that nest."""

    def __init__(self, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                # Bulk inserts maintain the unique prediction_id index; a 64 MiB page cache
                # keeps it in memory instead of re-reading pages for every row.
                conn.execute("PRAGMA cache_size=-65536")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path, self.busy_timeout_ms) from None
            self._local.conn, self._local.depth = conn, 0
            with self._lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction on this thread's connection; an inner ``tx`` joins the outer one.

        Writers take the lock up front (BEGIN IMMEDIATE) so two writers queue on
        busy_timeout instead of failing halfway with a lock upgrade error.
        """
        conn = self.connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, self.busy_timeout_ms) from None
        self._local.depth = 1
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.rollback()
            raise _translate(exc, self.path, self.busy_timeout_ms) from None
        except BaseException:
            conn.rollback()
            raise
        else:
            try:
                conn.commit()
            except sqlite3.Error as exc:
                conn.rollback()
                raise _translate(exc, self.path, self.busy_timeout_ms) from None
        finally:
            self._local.depth = 0

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


# ---------------------------------------------------------------------------------------
# Documents


IndexColumns = Mapping[str, tuple[str, Callable[[Any], Any]]]


def _ms_of(attr: str) -> Callable[[Any], int | None]:
    return lambda doc: None if getattr(doc, attr) is None else to_ms(getattr(doc, attr))


class _DocTable:
    """A collection stored as ``(id, doc JSON, indexed columns...)``."""

    def __init__(self, db: _Db, table: str, model: type, id_field: str, index_columns: IndexColumns):
        self.db, self.table, self.model, self.id_field = db, table, model, id_field
        self.index_columns = index_columns

    def ddl(self) -> list[str]:
        cols = ", ".join(f"{name} {sql_type}" for name, (sql_type, _) in self.index_columns.items())
        return [f"CREATE TABLE IF NOT EXISTS {self.table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL"
                + (f", {cols}" if cols else "") + ")"]

    def _row(self, doc) -> tuple:
        return (getattr(doc, self.id_field), doc.model_dump_json(),
                *(extract(doc) for _, extract in self.index_columns.values()))

    def insert(self, doc) -> Any:
        doc = base.validated(self.model, doc)
        names = ["id", "doc", *self.index_columns]
        sql = f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        try:
            with self.db.tx() as conn:
                conn.execute(sql, self._row(doc))
        except Conflict as exc:
            if f"{self.table}.id" not in str(exc):
                raise Conflict(f"{self.model.__name__} refused ({exc}); nothing was written") from None
            raise Conflict(f"a {self.model.__name__} with {self.id_field} "
                           f"{getattr(doc, self.id_field)!r} already exists; nothing was written") from None
        return doc

    def replace(self, conn: sqlite3.Connection, doc) -> None:
        names = ["doc", *self.index_columns]
        sets = ", ".join(f"{n} = ?" for n in names)
        doc_id, *values = self._row(doc)
        conn.execute(f"UPDATE {self.table} SET {sets} WHERE id = ?", (*values, doc_id))

    def find(self, doc_id: str):
        with self.db.tx(write=False) as conn:
            row = conn.execute(f"SELECT doc FROM {self.table} WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else self.model.model_validate_json(row[0])

    def select(self, where: Sequence[tuple[str, Any]] = (), order: str | None = None,
               limit: int | None = None, conn: sqlite3.Connection | None = None) -> list:
        """Documents matching ``where`` (pairs of SQL condition with one ``?`` and value;
        a value that is a list expands to ``IN``)."""
        clauses, params = [], []
        for condition, value in where:
            if isinstance(value, (list, tuple)):
                clauses.append(condition.replace("?", f"({', '.join('?' * len(value))})"))
                params.extend(value)
            else:
                clauses.append(condition)
                params.append(value)
        sql = f"SELECT doc FROM {self.table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if conn is not None:
            rows = conn.execute(sql, params).fetchall()
        else:
            with self.db.tx(write=False) as c:
                rows = c.execute(sql, params).fetchall()
        return [self.model.model_validate_json(r[0]) for r in rows]

    def compare_and_set(self, repo: base.DocumentRepository, doc_id: str, changes: dict, expect: dict):
        with self.db.tx() as conn:
            row = conn.execute(f"SELECT doc FROM {self.table} WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                raise base.NotFound(f"no {self.model.__name__} with {self.id_field} {doc_id!r}")
            current = self.model.model_validate_json(row[0])
            _check_expectation(current, expect, self.model.__name__, doc_id)
            updated = repo._merged(current, changes)
            self.replace(conn, updated)
        return updated


def _check_expectation(current, expect: Mapping[str, Any], what: str, doc_id: str) -> None:
    for name, wanted in expect.items():
        have = getattr(current, name)
        if have != wanted:
            raise Conflict(f"{what} {doc_id!r} has {name}={have!s}, expected {wanted!s}; "
                           "it was changed by someone else — reload and try again")


def _sql_in(name: str, values: Sequence[Any] | None) -> list[tuple[str, Any]]:
    return [] if not values else [(f"{name} IN ?", [str(v) for v in values])]


def _listing(model_id, statuses, severities, since) -> list[tuple[str, Any]]:
    """Filters of the incident and alert lists."""
    where = [("model_id = ?", model_id)] if model_id else []
    where += _sql_in("status", statuses) + _sql_in("severity", severities)
    if since is not None:
        where.append(("created_at >= ?", to_ms(since)))
    return where


class _Delegating:
    """The document operations every repository shares, done by its ``_DocTable``."""

    t: _DocTable

    def insert(self, doc):
        return self.t.insert(doc)

    def find(self, doc_id):
        return self.t.find(doc_id)

    def _compare_and_set(self, doc_id, changes, expect):
        return self.t.compare_and_set(self, doc_id, changes, expect)


class SqliteBaselines(_Delegating, base.BaselineRepository):
    def __init__(self, db: _Db):
        self.db = db
        self.t = _DocTable(db, "drift_snapshots", DriftSnapshot, "snapshot_id", {
            "model_id": ("TEXT NOT NULL", lambda d: d.model_id),
            "is_active": ("INTEGER NOT NULL", lambda d: int(d.is_active)),
            "created_at": ("INTEGER NOT NULL", _ms_of("created_at")),
        })

    def ddl(self) -> list[str]:
        return self.t.ddl() + [
            "CREATE INDEX IF NOT EXISTS ix_snap_model_active ON drift_snapshots(model_id, is_active)",
            # At most one active baseline per model, whatever the code above does.
            "CREATE UNIQUE INDEX IF NOT EXISTS ux_snap_one_active ON drift_snapshots(model_id) WHERE is_active = 1",
        ]

    def insert(self, doc):
        try:
            return self.t.insert(doc)
        except Conflict as exc:
            if "drift_snapshots.model_id" in str(exc):
                raise Conflict(f"model {doc.model_id!r} already has an active baseline; "
                               "insert this one inactive and activate it") from None
            raise

    def active(self, model_id):
        found = self.t.select([("model_id = ?", model_id), ("is_active = ?", 1)])
        return found[0] if found else None

    def list(self, model_id=None):
        where = [("model_id = ?", model_id)] if model_id else []
        return self.t.select(where, order="created_at DESC, id")

    def activate(self, snapshot_id, at):
        with self.db.tx() as conn:
            row = conn.execute("SELECT doc FROM drift_snapshots WHERE id = ?", (snapshot_id,)).fetchone()
            if row is None:
                raise base.NotFound(f"no baseline {snapshot_id!r}")
            target = DriftSnapshot.model_validate_json(row[0])
            for current in self.t.select([("model_id = ?", target.model_id), ("is_active = ?", 1)], conn=conn):
                if current.snapshot_id != snapshot_id:
                    self.t.replace(conn, current.model_copy(update={"is_active": False, "archived_at": at}))
            activated = base.validated(DriftSnapshot, {**target.model_dump(), "is_active": True, "archived_at": None})
            self.t.replace(conn, activated)
        return activated


class SqliteRecords(_Delegating, base.RecordRepository):
    def __init__(self, db: _Db):
        self.t = _DocTable(db, "monitoring_records", MonitoringRecord, "record_id", {
            "model_id": ("TEXT NOT NULL", lambda d: d.model_id),
            "timestamp": ("INTEGER NOT NULL", _ms_of("timestamp")),
            "max_severity": ("TEXT NOT NULL", lambda d: str(d.max_severity)),
            "period_start": ("INTEGER", lambda d: to_ms(d.analysis_period.start)),
            "period_end": ("INTEGER", lambda d: to_ms(d.analysis_period.end)),
        })

    def ddl(self):
        return self.t.ddl() + [
            "CREATE INDEX IF NOT EXISTS ix_rec_model_ts ON monitoring_records(model_id, timestamp DESC)",
            "CREATE INDEX IF NOT EXISTS ix_rec_sev_ts ON monitoring_records(max_severity, timestamp DESC)",
            "CREATE INDEX IF NOT EXISTS ix_rec_period ON monitoring_records(period_start, period_end)",
            "CREATE INDEX IF NOT EXISTS ix_rec_ts ON monitoring_records(timestamp)",
        ]

    def list(self, model_id, start=None, end=None, limit=None):
        where = [("model_id = ?", model_id)]
        if start is not None:
            where.append(("timestamp >= ?", to_ms(start)))
        if end is not None:
            where.append(("timestamp < ?", to_ms(end)))
        return self.t.select(where, order="timestamp DESC, id", limit=limit)

    def purge_before(self, cutoff):
        with self.t.db.tx() as conn:
            return conn.execute("DELETE FROM monitoring_records WHERE timestamp < ?", (to_ms(cutoff),)).rowcount


def _metric_names(incident: Incident) -> str:
    # Delimited so that LIKE '%|name|%' matches whole names only.
    return "|" + "|".join(m.metric_name for m in incident.metrics_triggered) + "|"


class SqliteIncidents(_Delegating, base.IncidentRepository):
    def __init__(self, db: _Db):
        self.t = _DocTable(db, "incidents", Incident, "incident_id", {
            "model_id": ("TEXT NOT NULL", lambda d: d.model_id),
            "severity": ("TEXT NOT NULL", lambda d: str(d.severity)),
            "status": ("TEXT NOT NULL", lambda d: str(d.status)),
            "assigned_to": ("TEXT", lambda d: d.assigned_to),
            "created_at": ("INTEGER NOT NULL", _ms_of("created_at")),
            "metric_names": ("TEXT NOT NULL", _metric_names),
        })

    def ddl(self):
        return self.t.ddl() + [
            "CREATE INDEX IF NOT EXISTS ix_inc_status ON incidents(status, severity, created_at DESC)",
            "CREATE INDEX IF NOT EXISTS ix_inc_model ON incidents(model_id, created_at DESC)",
            "CREATE INDEX IF NOT EXISTS ix_inc_assignee ON incidents(assigned_to, status)",
        ]

    def list(self, model_id=None, statuses=None, severities=None, since=None, limit=None):
        return self.t.select(_listing(model_id, statuses, severities, since), order="created_at DESC, id",
                             limit=limit)

    def open_for(self, model_id, metric_name):
        found = self.t.select(
            [("model_id = ?", model_id),
             ("status IN ?", [IncidentStatus.OPEN.value, IncidentStatus.INVESTIGATING.value]),
             ("metric_names LIKE ? ESCAPE '\\'", "%|" + _escape_like(metric_name) + "|%")],
            order="created_at DESC, id", limit=1)
        return found[0] if found else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteAlerts(_Delegating, base.AlertRepository):
    def __init__(self, db: _Db):
        self.t = _DocTable(db, "alerts", Alert, "alert_id", {
            "incident_id": ("TEXT NOT NULL", lambda d: d.incident_id),
            "model_id": ("TEXT NOT NULL", lambda d: d.model_id),
            "metric_name": ("TEXT NOT NULL", lambda d: d.metric_name),
            "severity": ("TEXT NOT NULL", lambda d: str(d.severity)),
            "status": ("TEXT NOT NULL", lambda d: str(d.status)),
            "created_at": ("INTEGER NOT NULL", _ms_of("created_at")),
        })

    def ddl(self):
        return self.t.ddl() + [
            "CREATE INDEX IF NOT EXISTS ix_alert_dedup ON alerts(model_id, metric_name, severity, created_at DESC)",
            "CREATE INDEX IF NOT EXISTS ix_alert_status ON alerts(status, severity, created_at DESC)",
            "CREATE INDEX IF NOT EXISTS ix_alert_incident ON alerts(incident_id)",
        ]

    def list(self, model_id=None, statuses=None, severities=None, since=None, limit=None):
        return self.t.select(_listing(model_id, statuses, severities, since), order="created_at DESC, id",
                             limit=limit)

    def recent(self, model_id, metric_name, severity, since):
        found = self.t.select([("model_id = ?", model_id), ("metric_name = ?", metric_name),
                               ("severity = ?", str(severity)), ("created_at >= ?", to_ms(since))],
                              order="created_at DESC, id", limit=1)
        return found[0] if found else None

    def purge_before(self, cutoff):
        with self.t.db.tx() as conn:
            return conn.execute("DELETE FROM alerts WHERE created_at < ? AND severity != ?",
                                (to_ms(cutoff), Severity.CRITICAL.value)).rowcount


class SqliteSuppressions(_Delegating, base.SuppressionRepository):
    def __init__(self, db: _Db):
        self.t = _DocTable(db, "alert_suppressions", AlertSuppression, "suppression_id", {
            "model_id": ("TEXT NOT NULL", lambda d: d.model_id),
            "start_time": ("INTEGER NOT NULL", _ms_of("start_time")),
            "end_time": ("INTEGER NOT NULL", _ms_of("end_time")),
        })

    def ddl(self):
        return self.t.ddl() + [
            "CREATE INDEX IF NOT EXISTS ix_sup_model ON alert_suppressions(model_id, start_time, end_time)",
            "CREATE INDEX IF NOT EXISTS ix_sup_end ON alert_suppressions(end_time)",
        ]

    def active(self, model_id, at):
        moment = to_ms(at)
        return self.t.select([("model_id = ?", model_id), ("start_time <= ?", moment), ("end_time > ?", moment)],
                             order="start_time DESC, id")

    def list(self, model_id=None, include_expired=True, at=None):
        where = [("model_id = ?", model_id)] if model_id else []
        if not include_expired:
            where.append(("end_time > ?", to_ms(at or datetime.now(UTC))))
        return self.t.select(where, order="start_time DESC, id")


class SqliteAudit(base.AuditRepository):
    def __init__(self, db: _Db):
        self.db = db

    def ddl(self):
        return [
            "CREATE TABLE IF NOT EXISTS monitoring_audit_logs (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL, "
            "event_type TEXT NOT NULL, timestamp INTEGER NOT NULL, model_id TEXT, user_id TEXT, hash TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_audit_event ON monitoring_audit_logs(event_type, timestamp DESC)",
            "CREATE INDEX IF NOT EXISTS ix_audit_model ON monitoring_audit_logs(model_id, timestamp DESC)",
            "CREATE INDEX IF NOT EXISTS ix_audit_user ON monitoring_audit_logs(user_id, timestamp DESC)",
            "CREATE INDEX IF NOT EXISTS ix_audit_ts ON monitoring_audit_logs(timestamp)",
            # Append-only: the database itself refuses edits, so a bug cannot rewrite history.
            "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON monitoring_audit_logs "
            "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
        ]

    def append(self, entry, seal):
        with self.db.tx() as conn:
            row = conn.execute("SELECT doc FROM monitoring_audit_logs ORDER BY seq DESC LIMIT 1").fetchone()
            last = None if row is None else AuditEntry.model_validate_json(row[0])
            sealed = seal(entry, last)
            conn.execute(
                "INSERT INTO monitoring_audit_logs (seq, doc, event_type, timestamp, model_id, user_id, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sealed.seq, sealed.model_dump_json(), str(sealed.event_type), to_ms(sealed.timestamp),
                 sealed.target.model_id, sealed.actor.user_id, sealed.hash))
        return sealed

    def last(self):
        with self.db.tx(write=False) as conn:
            row = conn.execute("SELECT doc FROM monitoring_audit_logs ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else AuditEntry.model_validate_json(row[0])

    def list(self, start=None, end=None, event_types=None, model_id=None, user_id=None, limit=None):
        clauses, params = [], []
        for condition, value in ((("timestamp >= ?"), start and to_ms(start)), ("timestamp < ?", end and to_ms(end)),
                                 ("model_id = ?", model_id), ("user_id = ?", user_id)):
            if value is not None:
                clauses.append(condition)
                params.append(value)
        if event_types:
            clauses.append(f"event_type IN ({', '.join('?' * len(event_types))})")
            params.extend(str(e) for e in event_types)
        sql = "SELECT doc FROM monitoring_audit_logs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        with self.db.tx(write=False) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [AuditEntry.model_validate_json(r[0]) for r in rows]

    def iter_chain(self, batch_size=5000):
        after = 0
        while True:
            with self.db.tx(write=False) as conn:
                rows = conn.execute("SELECT seq, doc FROM monitoring_audit_logs WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after, batch_size)).fetchall()
            if not rows:
                return
            for _, doc in rows:
                yield AuditEntry.model_validate_json(doc)
            after = rows[-1][0]

    def purge_before(self, cutoff):
        with self.db.tx() as conn:
            return conn.execute("DELETE FROM monitoring_audit_logs WHERE timestamp < ?", (to_ms(cutoff),)).rowcount


class SqliteModels(base.ModelRepository):
    def __init__(self, db: _Db):
        self.t = _DocTable(db, "models", RegisteredModel, "model_id", {})

    def ddl(self):
        return self.t.ddl()

    def upsert(self, model):
        model = base.validated(RegisteredModel, model)
        with self.t.db.tx() as conn:
            conn.execute("INSERT INTO models (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                         (model.model_id, model.model_dump_json()))
        return model

    def find(self, model_id):
        return self.t.find(model_id)

    def list(self):
        return self.t.select(order="id")


class SqliteStore(base.Store):
    def __init__(self, path: Path, retention: RetentionPolicy | None = None,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.retention = retention or RetentionPolicy()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the data folder {self.path.parent}: {exc.strerror}") from None
        self.db = _Db(self.path, busy_timeout_ms)
        self.predictions = SqlitePredictions(self.db)
        self.baselines = SqliteBaselines(self.db)
        self.records = SqliteRecords(self.db)
        self.incidents = SqliteIncidents(self.db)
        self.alerts = SqliteAlerts(self.db)
        self.suppressions = SqliteSuppressions(self.db)
        self.audit = SqliteAudit(self.db)
        self.models = SqliteModels(self.db)
        self.description = f"embedded SQLite at {self.path}"

    def ensure_schema(self):
        statements = [s for repo in (self.predictions, self.baselines, self.records, self.incidents, self.alerts,
                                     self.suppressions, self.audit, self.models) for s in repo.ddl()]
        with self.db.tx() as conn:
            for statement in statements:
                conn.execute(statement)

    @contextlib.contextmanager
    def transaction(self):
        with self.db.tx():
            yield

    def purge_expired(self, now):
        cutoffs = self.retention.cutoffs(now)
        with self.db.tx():
            removed = {
                "prediction_logs": self.predictions.purge_before(cutoffs["prediction_logs"]),
                "monitoring_records": self.records.purge_before(cutoffs["monitoring_records"]),
                "monitoring_audit_logs": self.audit.purge_before(cutoffs["monitoring_audit_logs"]),
                "alerts": self.alerts.purge_before(cutoffs["alerts"]),
            }
        return base.PurgeReport(removed)

    def index_names(self):
        with self.db.tx(write=False) as conn:
            rows = conn.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'").fetchall()
        names: dict[str, list[str]] = {}
        for table, name in rows:
            names.setdefault(table, []).append(name)
        return {table: sorted(found) for table, found in names.items()}

    def close(self):
        self.db.close()
