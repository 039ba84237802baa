"""The embedded store's predictions: a row table for lookups, columnar segments for reads.

Predictions are the hot path and are stored in four tables:

- ``prediction_logs``: one row per prediction with the fields that are looked up or
  updated one at a time (id, model, timestamp, ground truth) and the segment holding the
  rest of the row, so ``find(prediction_id)`` decodes exactly one segment; its unique
  index on ``prediction_id`` refuses duplicates;
- ``prediction_segments``: per segment its model, time range, row and label counts and
  the model versions it holds, so ``summary()`` reads this small table and no blob;
- ``prediction_segment_columns``: the segment's columns as lz4-compressed Arrow arrays of
  up to 262,144 rows, each with a CRC-32 of its bytes. Reading a window of a million
  predictions decodes a handful of blobs per column instead of building millions of Python
  objects row by row (about 50x faster; see ``benchmarks/bench_ingest.py``). The checksum
  turns a damaged blob into :class:`~monitoring_core.errors.StoreDamaged` naming the
  segment: Arrow does not validate what it decodes, and garbage bytes can crash it;
- ``prediction_columns``: every column ever logged per model.

Small batches (the SDK writes every 10 predictions) are merged as they accumulate,
sixteen of a size at a time, so each row is rewritten only a few times over its life.
The merge runs after the write has committed, in transactions of its own that choose the
segments under the write lock, so a batch commits fast and two writers (threads or
processes) never merge the same segment twice.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import StoreDamaged, StoreUnavailable
from ..models import columns as col
from ..models.predictions import PredictionLog
from . import base
from .frames import TIME_DTYPE, frame_to_documents, normalise_dtypes, storable_predictions
from .sqlite_db import from_ms, to_ms

if TYPE_CHECKING:
    from .sqlite import _Db

log = logging.getLogger(__name__)

MAX_SQL_PARAMS = 30_000
# Columns kept in prediction_logs rather than in segments.
ROW_COLUMNS = (col.GROUND_TRUTH, col.GROUND_TRUTH_TIMESTAMP)
PK = "_pk"


@dataclass(frozen=True)
class SegmentLayout:
    """How rows are cut into segments and when small segments are merged.

    Parameters
    ----------
    segment_rows : int
        The most rows a segment holds.
    tier_limits : tuple of int
        Row counts separating the size tiers of segments; a tier holding ``fanout``
        segments is merged into segments of the next tier.
    fanout : int
        How many segments of a tier are merged at once.
    """

    segment_rows: int = 262_144
    tier_limits: tuple[int, ...] = (256, 8_192, 262_144)
    fanout: int = 16

    def tier(self, rows: int) -> int:
        return next((i for i, limit in enumerate(self.tier_limits) if rows < limit), len(self.tier_limits))

    def pieces(self, rows: pd.DataFrame) -> Iterator[pd.DataFrame]:
        for start in range(0, len(rows), self.segment_rows):
            yield rows.iloc[start:start + self.segment_rows]


class Segment(NamedTuple):
    """What ``prediction_segments`` says about one segment."""

    segment_id: int
    model_id: str
    ts_min: int
    ts_max: int
    n_rows: int

    def describe(self) -> str:
        return (f"segment {self.segment_id} of model {self.model_id!r} ({from_ms(self.ts_min):%Y-%m-%d %H:%M:%S} "
                f"to {from_ms(self.ts_max):%Y-%m-%d %H:%M:%S} UTC, {self.n_rows:,} rows)")


_SEGMENT_FIELDS = "segment_id, model_id, ts_min, ts_max, n_rows"


class SegmentDamaged(StoreDamaged):
    """A segment's stored bytes cannot be read back; ``segment`` says which one."""

    def __init__(self, segment: Segment, column: str, problem: str):
        self.segment = segment
        super().__init__(f"the predictions in {segment.describe()} cannot be read back (column {column!r}: "
                         f"{problem}); other time ranges and models are readable. Restore the database file "
                         "from a backup to recover these rows")


def _encode(series: pd.Series) -> tuple[str, bytes]:
    """One column as an lz4-compressed Arrow IPC stream; mixed-type columns as JSON text."""
    try:
        array = pa.Array.from_pandas(series)
        if isinstance(array, pa.ChunkedArray):  # arrow-backed pandas strings after a merge
            array = array.combine_chunks()
        encoding = "arrow"
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else json.dumps(v)
                          for v in series.astype(object)], type=pa.string())
        encoding = "json"
    sink = pa.BufferOutputStream()
    batch = pa.record_batch([array], names=["v"])
    with pa.ipc.new_stream(sink, batch.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_batch(batch)
    return encoding, sink.getvalue().to_pybytes()


def _decode(encoding: str, blob: bytes) -> pa.Array | _ObjectColumn:
    array = pa.ipc.open_stream(blob).read_all().column(0).combine_chunks()
    if encoding == "json":
        return _ObjectColumn(None if v is None else json.loads(v) for v in array.to_pylist())
    return array


class _ObjectColumn(list):
    """A decoded column whose values mix types (kept as Python objects)."""


def _concat(pieces: list[tuple[int, Any]], lengths: list[int]) -> pd.Series:
    """Join the decoded pieces of one column over segments (None = absent there)."""
    typed = [p for _, p in pieces if isinstance(p, pa.Array) and not pa.types.is_null(p.type)]
    objects = any(isinstance(p, _ObjectColumn) for _, p in pieces)
    types = {p.type for p in typed}
    if not objects and len(types) <= 1:
        kind = types.pop() if types else pa.float64()
        arrays = []
        for (_, piece), length in zip(pieces, lengths, strict=True):
            arrays.append(piece if isinstance(piece, pa.Array) and piece.type == kind else pa.nulls(length, kind))
        if not arrays:
            return pd.Series([], dtype="float64")
        return pa.chunked_array(arrays, type=kind).to_pandas()
    values: list[Any] = []
    for (_, piece), length in zip(pieces, lengths, strict=True):
        if piece is None or (isinstance(piece, pa.Array) and pa.types.is_null(piece.type)):
            values.extend([None] * length)
        elif isinstance(piece, _ObjectColumn):
            values.extend(piece)
        else:
            values.extend(piece.to_pylist())
    return pd.Series(values, dtype=object)


class SqlitePredictions(base.PredictionRepository):
    def __init__(self, db: _Db, layout: SegmentLayout = SegmentLayout()):
        self.db = db
        self.layout = layout

    def ddl(self):
        return [
            "CREATE TABLE IF NOT EXISTS prediction_logs (pk INTEGER PRIMARY KEY, prediction_id TEXT NOT NULL UNIQUE, "
            "model_id TEXT NOT NULL, timestamp INTEGER NOT NULL, "
            "ground_truth TEXT, ground_truth_timestamp INTEGER, segment_id INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_pred_model_ts ON prediction_logs(model_id, timestamp)",
            # Segment ids only grow, so this index is appended to, not scattered into.
            "CREATE INDEX IF NOT EXISTS ix_pred_segment ON prediction_logs(segment_id)",
            # AUTOINCREMENT: an id is never reused, so a row cannot point at a later segment by accident.
            "CREATE TABLE IF NOT EXISTS prediction_segments (segment_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "model_id TEXT NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, "
            "n_rows INTEGER NOT NULL, n_labelled INTEGER NOT NULL, tier INTEGER NOT NULL, "
            "model_versions TEXT NOT NULL, damage TEXT)",
            "CREATE INDEX IF NOT EXISTS ix_seg_model ON prediction_segments(model_id, tier, ts_min)",
            "CREATE TABLE IF NOT EXISTS prediction_segment_columns (segment_id INTEGER NOT NULL, "
            "column_name TEXT NOT NULL, encoding TEXT NOT NULL, crc32 INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (segment_id, column_name))",
            "CREATE TABLE IF NOT EXISTS prediction_columns (model_id TEXT NOT NULL, column_name TEXT NOT NULL, "
            "PRIMARY KEY (model_id, column_name))",
            # Keeps each segment's label count exact whichever statement sets or clears a label.
            "CREATE TRIGGER IF NOT EXISTS prediction_labelled AFTER UPDATE OF ground_truth ON prediction_logs "
            "WHEN (old.ground_truth IS NULL) != (new.ground_truth IS NULL) BEGIN "
            "UPDATE prediction_segments SET n_labelled = n_labelled + (CASE WHEN new.ground_truth IS NULL "
            "THEN -1 ELSE 1 END) WHERE segment_id = new.segment_id; END",
        ]

    def upgrade(self, conn) -> None:
        """Bring prediction tables written by the first release (no segment per row, no
        label counts, versions or checksums) to this layout, in the caller's transaction.

        Each old segment is decoded once for its row keys and model versions; its blobs get
        their checksums. Nothing is re-encoded, so the upgrade costs one read of the data.
        """
        present = {r[1] for r in conn.execute("PRAGMA table_info(prediction_logs)")}
        if not present or "segment_id" in present:
            return
        log.warning("upgrading the prediction tables of %s to the segment-per-row layout", self.db.path)
        conn.execute("ALTER TABLE prediction_logs ADD COLUMN segment_id INTEGER NOT NULL DEFAULT 0")
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'prediction_segments'").fetchone():
            return
        conn.execute("ALTER TABLE prediction_segments RENAME TO prediction_segments__legacy")
        conn.execute("DROP INDEX IF EXISTS ix_seg_model")
        conn.execute("ALTER TABLE prediction_segment_columns RENAME TO prediction_segment_columns__legacy")
        for statement in self.ddl():
            if statement.startswith("CREATE TABLE IF NOT EXISTS prediction_segment"):
                conn.execute(statement)
        conn.execute("INSERT INTO prediction_segments (segment_id, model_id, ts_min, ts_max, n_rows, n_labelled, "
                     "tier, model_versions) SELECT segment_id, model_id, ts_min, ts_max, n_rows, 0, tier, '[]' "
                     "FROM prediction_segments__legacy")
        blobs = conn.execute("SELECT segment_id, column_name, encoding, data "
                             "FROM prediction_segment_columns__legacy").fetchall()
        conn.executemany("INSERT INTO prediction_segment_columns (segment_id, column_name, encoding, crc32, data) "
                         "VALUES (?, ?, ?, ?, ?)",
                         ((sid, name, encoding, zlib.crc32(data), data) for sid, name, encoding, data in blobs))
        conn.execute("DROP TABLE prediction_segments__legacy")
        conn.execute("DROP TABLE prediction_segment_columns__legacy")
        for segment in self._segments(conn, "1 = 1", ()):
            self._adopt_segment(conn, segment)

    def _adopt_segment(self, conn, segment: Segment) -> None:
        try:
            rows = self._read_segments(conn, [segment], [PK, col.MODEL_VERSION])
        except SegmentDamaged as exc:
            conn.execute("UPDATE prediction_segments SET damage = ? WHERE segment_id = ?",
                         (str(exc), segment.segment_id))
            log.error("%s", exc)
            return
        conn.executemany("UPDATE prediction_logs SET segment_id = ? WHERE pk = ?",
                         ((segment.segment_id, pk) for pk in rows[PK].astype("int64").tolist()))
        versions = sorted(v for v in rows[col.MODEL_VERSION].dropna().unique() if isinstance(v, str))
        conn.execute("UPDATE prediction_segments SET model_versions = ?, n_labelled = (SELECT COUNT(ground_truth) "
                     "FROM prediction_logs WHERE prediction_logs.segment_id = ?) WHERE segment_id = ?",
                     (json.dumps(versions), segment.segment_id, segment.segment_id))

    # -- writing ---------------------------------------------------------------------

    def insert_frame(self, frame):
        if frame.empty:
            return base.InsertReport(0)
        frame = storable_predictions(frame)
        repeated = frame[col.PREDICTION_ID].duplicated()
        duplicates = frame.loc[repeated, col.PREDICTION_ID].tolist()
        frame = frame.loc[~repeated]
        with self.db.tx() as conn:
            existing = self._existing_ids(conn, frame[col.PREDICTION_ID].tolist())
            if existing:
                stored = frame[col.PREDICTION_ID].isin(existing)
                duplicates += frame.loc[stored, col.PREDICTION_ID].tolist()
                frame = frame.loc[~stored]
            if not frame.empty:
                self._write_rows(conn, frame)
        if not frame.empty:
            self._merge_after_write(frame[col.MODEL_ID].unique().tolist())
        return base.InsertReport(len(frame), duplicates)

    def _existing_ids(self, conn, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), MAX_SQL_PARAMS):
            chunk = ids[i:i + MAX_SQL_PARAMS]
            found.update(r[0] for r in conn.execute(
                f"SELECT prediction_id FROM prediction_logs WHERE prediction_id IN ({', '.join('?' * len(chunk))})",
                chunk))
        return found

    def _write_rows(self, conn, frame: pd.DataFrame) -> None:
        first = conn.execute("SELECT COALESCE(MAX(pk), 0) + 1 FROM prediction_logs").fetchone()[0]
        frame = frame.assign(**{PK: np.arange(first, first + len(frame), dtype="int64")})
        segment_of_row = np.zeros(len(frame), dtype="int64")
        for model_id, rows in frame.groupby(col.MODEL_ID, sort=False):
            conn.executemany("INSERT OR IGNORE INTO prediction_columns (model_id, column_name) VALUES (?, ?)",
                             [(model_id, c) for c in rows.columns if c not in (PK, col.MODEL_ID)]
                             + [(model_id, c) for c in ROW_COLUMNS])
            for piece in self.layout.pieces(rows.sort_values(col.TIMESTAMP, kind="stable")):
                labelled = int(piece[col.GROUND_TRUTH].notna().sum()) if col.GROUND_TRUTH in piece else 0
                stored = piece.drop(columns=[c for c in (col.MODEL_ID, *ROW_COLUMNS) if c in piece])
                segment_of_row[piece[PK].to_numpy() - first] = self._write_segment(conn, model_id, stored, labelled)
        ts = frame[col.TIMESTAMP].astype("int64").to_numpy()
        gt_ts = frame.get(col.GROUND_TRUTH_TIMESTAMP)
        conn.executemany(
            "INSERT INTO prediction_logs (pk, prediction_id, model_id, timestamp, ground_truth, "
            "ground_truth_timestamp, segment_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            zip(frame[PK].tolist(), frame[col.PREDICTION_ID].tolist(), frame[col.MODEL_ID].tolist(), ts.tolist(),
                _nullable(frame, col.GROUND_TRUTH), _nullable_ms(gt_ts, len(frame)), segment_of_row.tolist(),
                strict=True))

    def _write_segment(self, conn, model_id: str, rows: pd.DataFrame, labelled: int) -> int:
        ts = rows[col.TIMESTAMP].astype("int64")
        versions = sorted(v for v in rows[col.MODEL_VERSION].dropna().unique() if isinstance(v, str))
        segment_id = conn.execute(
            "INSERT INTO prediction_segments (model_id, ts_min, ts_max, n_rows, n_labelled, tier, model_versions) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (model_id, int(ts.min()), int(ts.max()), len(rows), labelled, self.layout.tier(len(rows)),
             json.dumps(versions))).lastrowid
        blobs = []
        for name in rows.columns:
            series = rows[name]
            if series.isna().all():
                continue  # an absent column reads back as missing anyway
            encoding, data = _encode(series)
            blobs.append((segment_id, name, encoding, zlib.crc32(data), data))
        conn.executemany("INSERT INTO prediction_segment_columns (segment_id, column_name, encoding, crc32, data) "
                         "VALUES (?, ?, ?, ?, ?)", blobs)
        return segment_id

    def _rewrite(self, conn, model_id: str, rows: pd.DataFrame) -> None:
        """Store rows decoded from segments (already in ``prediction_logs``) as new segments."""
        written = []
        for piece in self.layout.pieces(rows.sort_values(col.TIMESTAMP, kind="stable")):
            segment_id = self._write_segment(conn, model_id, piece, labelled=0)
            conn.executemany("UPDATE prediction_logs SET segment_id = ? WHERE pk = ?",
                             ((segment_id, pk) for pk in piece[PK].tolist()))
            written.append(segment_id)
        conn.execute(
            "UPDATE prediction_segments SET n_labelled = (SELECT COUNT(ground_truth) FROM prediction_logs "
            "WHERE prediction_logs.segment_id = prediction_segments.segment_id) "
            f"WHERE segment_id IN ({', '.join('?' * len(written))})", written)

    def _delete_segments(self, conn, ids: Sequence[int]) -> None:
        for i in range(0, len(ids), MAX_SQL_PARAMS):
            chunk = list(ids[i:i + MAX_SQL_PARAMS])
            marks = ", ".join("?" * len(chunk))
            conn.execute(f"DELETE FROM prediction_segment_columns WHERE segment_id IN ({marks})", chunk)
            conn.execute(f"DELETE FROM prediction_segments WHERE segment_id IN ({marks})", chunk)

    # -- merging ---------------------------------------------------------------------

    def _merge_after_write(self, model_ids: Sequence[str]) -> None:
        # The rows are committed: a merge that cannot get the lock now is done by a later write.
        try:
            for model_id in model_ids:
                self.merge(model_id)
        except StoreUnavailable as exc:
            log.info("merging small prediction segments is postponed: %s", exc)

    def merge(self, model_id: str | None = None) -> int:
        """Merge each tier of small segments that has filled up; returns the merges done.

        Parameters
        ----------
        model_id : str, optional
            Merge this model's segments only (default: every model's).
        """
        done = 0
        for model in [model_id] if model_id is not None else self.model_ids():
            for tier in range(len(self.layout.tier_limits)):
                while self._merge_tier(model, tier):
                    done += 1
        return done

    def _merge_tier(self, model_id: str, tier: int) -> bool:
        with self.db.tx() as conn:
            # Chosen under the write lock: another writer's merge has either committed or not begun.
            segments = self._segments(conn, "model_id = ? AND tier = ? AND damage IS NULL", (model_id, tier))
            if len(segments) < self.layout.fanout:
                return False
            try:
                rows = self._read_segments(conn, segments, None)
            except SegmentDamaged as exc:
                # Left where it is, readable rows and all, and out of every later merge.
                conn.execute("UPDATE prediction_segments SET damage = ? WHERE segment_id = ?",
                             (str(exc), exc.segment.segment_id))
                log.error("%s", exc)
                return True
            self._delete_segments(conn, [s.segment_id for s in segments])
            self._rewrite(conn, model_id, rows)
        return True

    # -- reading ---------------------------------------------------------------------

    def _segments(self, conn, where: str, params: Sequence[Any]) -> list[Segment]:
        return [Segment(*row) for row in conn.execute(
            f"SELECT {_SEGMENT_FIELDS} FROM prediction_segments WHERE {where} ORDER BY ts_min, segment_id", params)]

    def _read_segments(self, conn, segments: Sequence[Segment], names: Sequence[str] | None) -> pd.DataFrame:
        """Decode whole segments; ``names=None`` reads every stored column."""
        if not segments:
            return pd.DataFrame({n: pd.Series(dtype="float64") for n in names or ()})
        by_id = {s.segment_id: s for s in segments}
        pieces: dict[str, dict[int, Any]] = {}
        for i in range(0, len(segments), MAX_SQL_PARAMS // 2):
            chunk = [s.segment_id for s in segments[i:i + MAX_SQL_PARAMS // 2]]
            sql = f"SELECT segment_id, column_name, encoding, crc32, data FROM prediction_segment_columns " \
                  f"WHERE segment_id IN ({', '.join('?' * len(chunk))})"
            params: list[Any] = chunk
            if names is not None:
                sql += f" AND column_name IN ({', '.join('?' * len(names))})"
                params = chunk + list(names)
            for segment_id, name, encoding, crc, blob in conn.execute(sql, params):
                pieces.setdefault(name, {})[segment_id] = _decode_checked(by_id[segment_id], name, encoding, crc, blob)
        sizes = [s.n_rows for s in segments]
        wanted = list(names) if names is not None else list(pieces)
        data = {name: _concat([(s.segment_id, pieces.get(name, {}).get(s.segment_id)) for s in segments], sizes)
                for name in wanted}
        frame = pd.DataFrame(data)
        if len(frame) != sum(sizes):  # no column stored at all
            frame = pd.DataFrame(index=range(sum(sizes)), columns=wanted)
        return frame

    def window(self, model_id, start, end, columns):
        columns = list(dict.fromkeys(columns))
        start_ms, end_ms = to_ms(start), to_ms(end)
        segment_cols = [c for c in columns if c not in ROW_COLUMNS and c != col.MODEL_ID]
        needs_labels = any(c in ROW_COLUMNS for c in columns)
        read = list(dict.fromkeys([col.TIMESTAMP, *segment_cols, *([PK] if needs_labels else [])]))
        with self.db.tx(write=False) as conn:
            segments = self._segments(conn, "model_id = ? AND ts_max >= ? AND ts_min < ?",
                                      (model_id, start_ms, end_ms))
            frame = self._read_segments(conn, segments, read)
            stamps = frame[col.TIMESTAMP].astype("int64").to_numpy() if len(frame) else np.array([], "int64")
            frame = frame.loc[(stamps >= start_ms) & (stamps < end_ms)]
            if needs_labels:
                labels = self._labels(conn, model_id, start_ms, end_ms)
        frame = frame.sort_values(col.TIMESTAMP, kind="stable").reset_index(drop=True)
        if needs_labels:
            frame = _attach_labels(frame, labels)
        if col.MODEL_ID in columns:
            frame[col.MODEL_ID] = pd.Series([model_id] * len(frame), dtype="str")
        for name in columns:
            if name not in frame:
                frame[name] = pd.Series(np.nan, index=frame.index, dtype="float64")
        return normalise_dtypes(frame[columns])

    def _labels(self, conn, model_id: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        # One row of three long strings instead of a row per label: SQLite joins them in C
        # and Python splits them in C, about 5x faster than fetching 500,000 tuples.
        pks, truths, stamps = conn.execute(
            "SELECT group_concat(pk, ','), group_concat(ground_truth, char(31)), "
            "group_concat(COALESCE(ground_truth_timestamp, ''), ',') FROM prediction_logs "
            "WHERE model_id = ? AND timestamp >= ? AND timestamp < ? AND ground_truth IS NOT NULL",
            (model_id, start_ms, end_ms)).fetchone()
        if pks is None:
            return pd.DataFrame({"pk": np.array([], "int64"), col.GROUND_TRUTH: pd.Series([], dtype="str"),
                                 col.GROUND_TRUTH_TIMESTAMP: pd.Series([], dtype=TIME_DTYPE)})
        stamp_ms = pd.to_numeric(pd.Series(stamps.split(",")).replace("", None), errors="coerce")
        return pd.DataFrame({
            "pk": np.array(pks.split(","), dtype="int64"),
            col.GROUND_TRUTH: pd.Series(truths.split("\x1f"), dtype="str"),
            col.GROUND_TRUTH_TIMESTAMP: pd.to_datetime(stamp_ms, unit="ms", utc=True).astype(TIME_DTYPE),
        })

    def columns(self, model_id):
        with self.db.tx(write=False) as conn:
            return [r[0] for r in conn.execute(
                "SELECT column_name FROM prediction_columns WHERE model_id = ? ORDER BY column_name", (model_id,))]

    def model_ids(self):
        with self.db.tx(write=False) as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT model_id FROM prediction_segments ORDER BY model_id")]

    def count(self, model_id, start=None, end=None):
        sql, params = "SELECT COUNT(*) FROM prediction_logs WHERE model_id = ?", [model_id]
        if start is not None:
            sql, params = sql + " AND timestamp >= ?", params + [to_ms(start)]
        if end is not None:
            sql, params = sql + " AND timestamp < ?", params + [to_ms(end)]
        with self.db.tx(write=False) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def summary(self, model_id):
        # Segment metadata only: the cost grows with the number of segments, not of rows.
        with self.db.tx(write=False) as conn:
            count, labelled, first, last = conn.execute(
                "SELECT COALESCE(SUM(n_rows), 0), COALESCE(SUM(n_labelled), 0), MIN(ts_min), MAX(ts_max) "
                "FROM prediction_segments WHERE model_id = ?", (model_id,)).fetchone()
            versions = [r[0] for r in conn.execute(
                "SELECT DISTINCT version.value FROM prediction_segments, json_each(model_versions) AS version "
                "WHERE model_id = ? ORDER BY version.value", (model_id,))]
        return base.PredictionSummary(model_id, count, labelled, from_ms(first), from_ms(last), versions)

    def check(self, model_id):
        problems = []
        with self.db.tx(write=False) as conn:
            for segment in self._segments(conn, "model_id = ?", (model_id,)):
                # One blob at a time: checking a large store never holds more than one column.
                for name, encoding, crc, blob in conn.execute(
                        "SELECT column_name, encoding, crc32, data FROM prediction_segment_columns "
                        "WHERE segment_id = ?", (segment.segment_id,)):
                    try:
                        _decode_checked(segment, name, encoding, crc, blob)
                    except SegmentDamaged as exc:
                        problems.append(str(exc))
                        break
        return problems

    def find(self, prediction_id):
        with self.db.tx(write=False) as conn:
            row = conn.execute("SELECT pk, model_id, segment_id, ground_truth, ground_truth_timestamp "
                               "FROM prediction_logs WHERE prediction_id = ?", (prediction_id,)).fetchone()
            if row is None:
                return None
            pk, model_id, segment_id, truth, truth_ms = row
            frame = self._read_segments(conn, self._segments(conn, "segment_id = ?", (segment_id,)), None)
        frame = frame.loc[frame[PK] == pk].drop(columns=[PK]).assign(**{
            col.MODEL_ID: model_id, col.GROUND_TRUTH: truth, col.GROUND_TRUTH_TIMESTAMP: from_ms(truth_ms)})
        return PredictionLog.model_validate(frame_to_documents(normalise_dtypes(frame))[0])

    def record_ground_truth(self, model_id, labels, at):
        updated, unknown = 0, []
        with self.db.tx() as conn:
            for prediction_id, label in labels.items():
                changed = conn.execute(
                    "UPDATE prediction_logs SET ground_truth = ?, ground_truth_timestamp = ? "
                    "WHERE prediction_id = ? AND model_id = ?", (str(label), to_ms(at), prediction_id, model_id)
                ).rowcount
                if changed:
                    updated += 1
                else:
                    unknown.append(prediction_id)
        return base.GroundTruthReport(updated, unknown)

    def purge_before(self, cutoff):
        cutoff_ms = to_ms(cutoff)
        with self.db.tx() as conn:
            expired = self._segments(conn, "ts_max < ?", (cutoff_ms,))
            self._delete_segments(conn, [s.segment_id for s in expired])
            kept_whole = []
            for segment in self._segments(conn, "ts_min < ?", (cutoff_ms,)):
                try:
                    rows = self._read_segments(conn, [segment], None)
                except SegmentDamaged as exc:
                    # Kept whole with its rows, so what it holds stays counted and named.
                    conn.execute("UPDATE prediction_segments SET damage = ? WHERE segment_id = ?",
                                 (str(exc), segment.segment_id))
                    log.error("retention cannot trim %s", exc)
                    kept_whole.append(segment.segment_id)
                    continue
                self._delete_segments(conn, [segment.segment_id])
                kept = rows.loc[rows[col.TIMESTAMP].astype("int64") >= cutoff_ms]
                if len(kept):
                    self._rewrite(conn, segment.model_id, kept)
            return conn.execute(
                "DELETE FROM prediction_logs WHERE timestamp < ? "
                f"AND segment_id NOT IN ({', '.join('?' * len(kept_whole))})", [cutoff_ms, *kept_whole]).rowcount


def _decode_checked(segment: Segment, name: str, encoding: str, crc: int, blob: bytes) -> pa.Array | _ObjectColumn:
    """One stored column; ``SegmentDamaged`` if its bytes are not what was written."""
    if zlib.crc32(blob) != crc:
        raise SegmentDamaged(segment, name, "its bytes differ from those written (checksum mismatch)")
    try:
        values = _decode(encoding, blob)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SegmentDamaged(segment, name, f"{type(exc).__name__}: {exc}") from None
    if len(values) != segment.n_rows:
        raise SegmentDamaged(segment, name, f"{len(values)} values where {segment.n_rows} were written")
    return values


def _attach_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Ground truth from the row table, matched to the window's rows by primary key."""
    position = pd.Index(labels["pk"]).get_indexer(frame[PK].astype("int64"))
    found = position >= 0
    for name in ROW_COLUMNS:
        if len(labels):
            values = labels[name].iloc[np.where(found, position, 0)].reset_index(drop=True)
            frame[name] = values.where(found)
        else:
            frame[name] = pd.Series(index=frame.index, dtype=labels[name].dtype)
    return frame


def _nullable(frame: pd.DataFrame, name: str) -> list[Any]:
    if name not in frame:
        return [None] * len(frame)
    series = frame[name]
    return series.astype(object).where(series.notna(), None).tolist()


def _nullable_ms(series: pd.Series | None, length: int) -> list[int | None]:
    if series is None:
        return [None] * length
    missing = series.isna().to_numpy()
    ms = series.dt.tz_localize(None).to_numpy().astype("datetime64[ms]").astype("int64")
    return [None if gone else int(v) for v, gone in zip(ms, missing, strict=True)]

