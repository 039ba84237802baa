"""The embedded default: one SQLite file in WAL mode, no server to install.

Documents (baselines, records, incidents, alerts, suppressions, audit entries, models)
are stored by :class:`SqliteDriver` as JSON with their declared fields copied into
indexed columns (see :mod:`.driver`); the repositories themselves are shared with MongoDB.

A new database is only created where no file exists: an existing file that is empty, is
not SQLite, or is a SQLite database of something else is refused with ``StoreDamaged``
(a Fairwatch file is marked with ``PRAGMA application_id``).

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
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import Conflict, StoreDamaged, StoreUnavailable
from . import base
from .driver import ASC, DESC, Collection, Cond, Driver, DuplicateKey, Index, IndexInfo, Row, parse, value_at
from .retention import RetentionPolicy
from .segments import SqlitePredictions
from .sqlite_db import to_ms

BUSY_TIMEOUT_MS = 15_000


def _translate(exc: sqlite3.Error, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Exception:
    """SQLite's error as the one a user can act on, chosen by SQLite's result code."""
    code = (exc.sqlite_errorcode or 0) & 0xFF
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(str(exc))
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreUnavailable(f"the database {path} is locked by another process "
                                f"(waited {busy_timeout_ms / 1000:g} s); try again when it finishes")
    if code == sqlite3.SQLITE_READONLY:
        return StoreUnavailable(f"the database {path} is read-only: check the file's and folder's permissions")
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL):
        return StoreUnavailable(f"cannot open or write the database {path}: {exc}")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreDamaged(f"{path} is damaged and not a readable Fairwatch database: {exc}")
    return StoreUnavailable(f"database error on {path}: {exc}")


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

# Marks a file as a Fairwatch database (PRAGMA application_id), so that an unrelated
# SQLite file is refused instead of having tables added to it.
APPLICATION_ID = 0x46574D31  # "FWM1"
# A file from before the mark holds these tables; it is adopted and marked.
UNMARKED_FAIRWATCH_TABLES = {"prediction_logs", "monitoring_audit_logs", "drift_snapshots"}
SQL_TYPES = {"text": "TEXT", "time": "INTEGER", "bool": "INTEGER", "int": "INTEGER", "tags": "TEXT"}
SQL_OPS = {"==": "=", "!=": "!=", ">=": ">=", ">": ">", "<": "<", "<=": "<="}


def _column(c: Collection, path: str) -> str:
    return "id" if path == c.id_field else path.replace(".", "_")


def _sql_value(kind: str, value: Any) -> Any:
    """A document value as stored in its SQLite column (times as epoch milliseconds)."""
    if value is None:
        return None
    if kind == "time":
        return to_ms(value)
    if kind in ("bool", "int"):
        return int(value)
    if kind == "tags":
        return json.dumps([str(v) for v in value if v is not None])
    return str(value)


def _literal(value: Any) -> str:
    """A constant for a partial index's WHERE clause (SQLite takes no parameters there)."""
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def check_database_file(path: Path) -> None:
    """Refuse a file that exists but cannot be a Fairwatch database (empty, or not SQLite);
    a new store is only ever created where no file exists.

    The header is read through SQLite, never with ``open()``: closing any other descriptor
    of the file drops the POSIX locks this process's SQLite connections hold on it (see
    "How To Corrupt An SQLite Database File", 2.2), and a second store opened while the
    first was writing then let two writers overwrite each other's pages.
    """
    if not path.exists():
        return
    if path.stat().st_size == 0:
        raise StoreDamaged(f"{path} is empty (0 bytes), so it is not a Fairwatch database; it was not touched. "
                           "Restore it from a backup, or move it away to start a new store there")
    probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        probe.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
            raise _translate(exc, path, BUSY_TIMEOUT_MS) from None
        raise StoreDamaged(f"{path} is not a SQLite database, so it is not a Fairwatch database; it was not "
                           "touched. Check FAIRWATCH_DATA_DIR, or move the file away to start a new store there"
                           ) from None
    finally:
        probe.close()


def claim_database(conn: sqlite3.Connection, path: Path) -> None:
    """Mark a new (or older, unmarked) Fairwatch database; refuse any other SQLite file."""
    if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
        return
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and not UNMARKED_FAIRWATCH_TABLES <= tables:
        raise StoreDamaged(f"{path} is a SQLite database of something else (tables: {', '.join(sorted(tables))}), "
                           "not a Fairwatch database; it was not touched. Point FAIRWATCH_DATA_DIR elsewhere")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


class SqliteDriver(Driver):
    """Each collection is a table ``(id PRIMARY KEY, rev, doc JSON, one column per declared
    field)``; indexes are SQLite indexes over those columns."""

    def __init__(self, db: _Db):
        self.db = db

    # -- schema ------------------------------------------------------------------------

    def _columns(self, c: Collection) -> dict[str, str]:
        return {_column(c, f.path): SQL_TYPES[f.kind] for f in c.fields}

    def _create_table(self, conn: sqlite3.Connection, c: Collection) -> None:
        columns = "".join(f", {name} {sql_type}" for name, sql_type in self._columns(c).items())
        conn.execute(f"CREATE TABLE IF NOT EXISTS {c.name} (id {SQL_TYPES[c.id_kind]} PRIMARY KEY, "
                     f"rev INTEGER NOT NULL, doc TEXT NOT NULL{columns})")
        if c.append_only:  # the database itself refuses edits, so a bug cannot rewrite history
            conn.execute(f"CREATE TRIGGER IF NOT EXISTS {c.name}__append_only BEFORE UPDATE ON {c.name} "
                         f"BEGIN SELECT RAISE(ABORT, '{c.name} is append-only'); END")

    def ensure_collection(self, c: Collection) -> None:
        with self.db.tx() as conn:
            present = [r[1] for r in conn.execute(f"PRAGMA table_info({c.name})")]
            if present and set(present) != {"id", "rev", "doc", *self._columns(c)}:
                self._rebuild(conn, c)
            self._create_table(conn, c)
            existing = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                         (c.name,)).fetchall())
            for index in c.indexes:
                name, sql = self._index_ddl(c, index)
                if existing.get(name) != sql:
                    if name in existing:
                        conn.execute(f"DROP INDEX {name}")
                    conn.execute(sql)

    def _rebuild(self, conn: sqlite3.Connection, c: Collection) -> None:
        """Move a table written by an earlier layout into the declared one, document by
        document (the JSON documents are the source of truth; columns are derived)."""
        legacy = f"{c.name}__legacy"
        conn.execute(f"ALTER TABLE {c.name} RENAME TO {legacy}")
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger') "
                                       "AND tbl_name = ? AND sql IS NOT NULL", (legacy,)).fetchall():
            conn.execute(f"DROP {kind.upper()} {name}")
        self._create_table(conn, c)
        for (payload,) in conn.execute(f"SELECT doc FROM {legacy}").fetchall():
            self._insert(conn, c, parse(c, Row(None, 0, payload)))
        conn.execute(f"DROP TABLE {legacy}")

    def _partial(self, c: Collection, index: Index) -> str | None:
        if not index.where:
            return None
        return " AND ".join(f"{_column(c, w.path)} {SQL_OPS[w.op]} "
                            f"{_literal(_sql_value(c.field(w.path).kind, w.value))}" for w in index.where)

    def _index_ddl(self, c: Collection, index: Index) -> tuple[str, str]:
        columns = [_column(c, path) for path, _ in index.keys]
        # Index names are global in SQLite: prefix them with the table.
        name = f"{c.name}__{index.name or '_'.join(columns)}"
        keys = ", ".join(f"{column}{' DESC' if direction == DESC else ''}"
                         for column, (_, direction) in zip(columns, index.keys, strict=True))
        partial = self._partial(c, index)
        sql = (f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {name} ON {c.name}({keys})"
               + (f" WHERE {partial}" if partial else ""))
        return name, sql

    def expected(self, c: Collection, index: Index) -> IndexInfo:
        return IndexInfo(index.keys, index.unique, self._partial(c, index), None)

    def indexes(self, c: Collection) -> list[IndexInfo]:
        paths = {_column(c, path): path for path in (c.id_field, *(f.path for f in c.fields))}
        found = []
        with self.db.tx(write=False) as conn:
            explicit = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                    "AND sql IS NOT NULL", (c.name,)).fetchall()
            unique = {r[1]: bool(r[2]) for r in conn.execute(f"PRAGMA index_list({c.name})")}
            for name, sql in explicit:
                keys = tuple((paths.get(r[2], r[2]), DESC if r[3] else ASC)
                             for r in conn.execute(f"PRAGMA index_xinfo({name})") if r[5])
                partial = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else None
                found.append(IndexInfo(keys, unique[name], partial, None))
        return found

    # -- documents -----------------------------------------------------------------------

    def _values(self, c: Collection, doc: BaseModel) -> list[Any]:
        return [_sql_value(f.kind, value_at(doc, f.path)) for f in c.fields]

    def _insert(self, conn: sqlite3.Connection, c: Collection, doc: BaseModel) -> None:
        names = ["id", "rev", "doc", *self._columns(c)]
        try:
            conn.execute(f"INSERT INTO {c.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                         (getattr(doc, c.id_field), 1, doc.model_dump_json(), *self._values(c, doc)))
        except sqlite3.IntegrityError as exc:
            raise _duplicate(c, exc) from None

    def insert(self, c, doc):
        with self.db.tx() as conn:
            self._insert(conn, c, doc)

    def replace(self, c, doc, rev):
        sets = "".join(f", {name} = ?" for name in self._columns(c))
        with self.db.tx() as conn:
            try:
                changed = conn.execute(f"UPDATE {c.name} SET rev = rev + 1, doc = ?{sets} WHERE id = ? AND rev = ?",
                                       (doc.model_dump_json(), *self._values(c, doc), getattr(doc, c.id_field),
                                        rev)).rowcount
            except sqlite3.IntegrityError as exc:
                raise _duplicate(c, exc) from None
        return changed == 1

    def _select_sql(self, c: Collection) -> str:
        return f"SELECT {', '.join(['id', 'rev', 'doc', *self._columns(c)])} FROM {c.name}"

    def _row(self, c: Collection, raw: tuple) -> Row:
        return Row(raw[0], raw[1], raw[2], {f.path: value for f, value in zip(c.fields, raw[3:], strict=True)})

    def load(self, c, doc_id):
        with self.db.tx(write=False) as conn:
            raw = conn.execute(f"{self._select_sql(c)} WHERE id = ?", (doc_id,)).fetchone()
        return None if raw is None else self._row(c, raw)

    def _where(self, c: Collection, conds: Sequence[Cond]) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for cond in conds:
            column, kind = _column(c, cond.path), c.field(cond.path).kind
            if cond.op == "in":
                clauses.append(f"{column} IN ({', '.join('?' * len(cond.value))})")
                params += [_sql_value(kind, v) for v in cond.value]
            elif cond.op == "has":
                clauses.append(f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)")
                params.append(str(cond.value))
            elif cond.value is None and cond.op in ("==", "!="):
                clauses.append(f"{column} IS {'NOT ' if cond.op == '!=' else ''}NULL")
            else:
                clauses.append(f"{column} {SQL_OPS[cond.op]} ?")
                params.append(_sql_value(kind, cond.value))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def query(self, c, query):
        where, params = self._where(c, query.where)
        order = [f"{_column(c, path)} {'DESC' if direction == DESC else 'ASC'}" for path, direction in query.order]
        if not any(path == c.id_field for path, _ in query.order):
            order.append("id")
        sql = f"{self._select_sql(c)}{where} ORDER BY {', '.join(order)}"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        with self.db.tx(write=False) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [self._row(c, raw) for raw in rows]

    def delete(self, c, where):
        clause, params = self._where(c, where)
        with self.db.tx() as conn:
            return conn.execute(f"DELETE FROM {c.name}{clause}", params).rowcount

    @contextlib.contextmanager
    def atomic(self):
        with self.db.tx():
            yield

    def close(self):
        self.db.close()


def _duplicate(c: Collection, exc: sqlite3.IntegrityError) -> Exception:
    if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
        return DuplicateKey(c.name, on_id=True)
    if exc.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
        return DuplicateKey(c.name, on_id=False)
    return Conflict(f"{c.name}: {exc}")

class SqliteStore(base.Store):
    def __init__(self, path: Path, retention: RetentionPolicy | None = None,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        check_database_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the data folder {self.path.parent}: {exc.strerror}") from None
        self.db = _Db(self.path, busy_timeout_ms)
        super().__init__(SqliteDriver(self.db), SqlitePredictions(self.db), retention,
                         f"embedded SQLite at {self.path}")

    def ensure_schema(self):
        with self.db.tx() as conn:
            claim_database(conn, self.path)
            super().ensure_schema()
            self.predictions.upgrade(conn)
            for statement in self.predictions.ddl():
                conn.execute(statement)
