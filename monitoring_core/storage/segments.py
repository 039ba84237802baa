"""The embedded store's predictions, stored as columnar segments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InvalidInput
from ..models import columns as col
from ..models.predictions import PredictionLog
from . import base
from .frames import TIME_DTYPE, frame_to_documents, normalise_dtypes
from .sqlite_db import from_ms, to_ms

if TYPE_CHECKING:
    from .sqlite import _Db

SEGMENT_ROWS = 262_144
MERGE_FANOUT = 16
# Row counts that separate the size tiers of segments; a tier holding MERGE_FANOUT
# segments is merged into one segment of the next tier.
TIER_LIMITS = (256, 8_192, SEGMENT_ROWS)
MAX_SQL_PARAMS = 30_000
# Columns kept in prediction_logs rather than in segments.
ROW_COLUMNS = (col.GROUND_TRUTH, col.GROUND_TRUTH_TIMESTAMP)
PK = "_pk"


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


def _tier(rows: int) -> int:
    return next((i for i, limit in enumerate(TIER_LIMITS) if rows < limit), len(TIER_LIMITS))


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
    def __init__(self, db: _Db):
        self.db = db

    def ddl(self):
        return [
            "CREATE TABLE IF NOT EXISTS prediction_logs (pk INTEGER PRIMARY KEY, prediction_id TEXT NOT NULL UNIQUE, "
            "model_id TEXT NOT NULL, timestamp INTEGER NOT NULL, "
            "ground_truth TEXT, ground_truth_timestamp INTEGER)",
            "CREATE INDEX IF NOT EXISTS ix_pred_model_ts ON prediction_logs(model_id, timestamp)",
            "CREATE TABLE IF NOT EXISTS prediction_segments (segment_id INTEGER PRIMARY KEY, "
            "model_id TEXT NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL, "
            "n_rows INTEGER NOT NULL, tier INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_seg_model ON prediction_segments(model_id, tier, ts_min)",
            "CREATE TABLE IF NOT EXISTS prediction_segment_columns (segment_id INTEGER NOT NULL, "
            "column_name TEXT NOT NULL, encoding TEXT NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (segment_id, column_name))",
            "CREATE TABLE IF NOT EXISTS prediction_columns (model_id TEXT NOT NULL, column_name TEXT NOT NULL, "
            "PRIMARY KEY (model_id, column_name))",
        ]

    # -- writing ---------------------------------------------------------------------

    def insert_frame(self, frame):
        if frame.empty:
            return base.InsertReport(0)
        frame = normalise_dtypes(frame.reset_index(drop=True))
        for required in (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION, col.TIMESTAMP):
            if required not in frame or frame[required].isna().any():
                raise InvalidInput(f"every prediction needs {required!r}")
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
        ts = frame[col.TIMESTAMP].astype("int64").to_numpy()
        gt_ts = frame[col.GROUND_TRUTH_TIMESTAMP] if col.GROUND_TRUTH_TIMESTAMP in frame else None
        conn.executemany(
            "INSERT INTO prediction_logs (pk, prediction_id, model_id, timestamp, ground_truth, "
            "ground_truth_timestamp) VALUES (?, ?, ?, ?, ?, ?)",
            zip(frame[PK].tolist(), frame[col.PREDICTION_ID].tolist(), frame[col.MODEL_ID].tolist(), ts.tolist(),
                _nullable(frame, col.GROUND_TRUTH), _nullable_ms(gt_ts, len(frame)), strict=True))
        for model_id, rows in frame.groupby(col.MODEL_ID, sort=False):
            rows = rows.drop(columns=[c for c in (col.MODEL_ID, *ROW_COLUMNS) if c in rows])
            rows = rows.sort_values(col.TIMESTAMP, kind="stable")
            conn.executemany("INSERT OR IGNORE INTO prediction_columns (model_id, column_name) VALUES (?, ?)",
                             [(model_id, c) for c in [*rows.columns, *ROW_COLUMNS] if c != PK])
            for start in range(0, len(rows), SEGMENT_ROWS):
                self._write_segment(conn, model_id, rows.iloc[start:start + SEGMENT_ROWS])
            self._merge_small_segments(conn, model_id)

    def _write_segment(self, conn, model_id: str, rows: pd.DataFrame) -> None:
        ts = rows[col.TIMESTAMP].astype("int64")
        segment_id = conn.execute(
            "INSERT INTO prediction_segments (model_id, ts_min, ts_max, n_rows, tier) VALUES (?, ?, ?, ?, ?)",
            (model_id, int(ts.min()), int(ts.max()), len(rows), _tier(len(rows)))).lastrowid
        blobs = []
        for name in rows.columns:
            series = rows[name]
            if series.isna().all():
                continue  # an absent column reads back as missing anyway
            encoding, data = _encode(series)
            blobs.append((segment_id, name, encoding, data))
        conn.executemany("INSERT INTO prediction_segment_columns (segment_id, column_name, encoding, data) "
                         "VALUES (?, ?, ?, ?)", blobs)

    def _merge_small_segments(self, conn, model_id: str) -> None:
        for tier in range(len(TIER_LIMITS)):
            ids = [r[0] for r in conn.execute(
                "SELECT segment_id FROM prediction_segments WHERE model_id = ? AND tier = ? ORDER BY ts_min",
                (model_id, tier))]
            if len(ids) < MERGE_FANOUT:
                continue
            merged = self._read_segments(conn, ids, None)
            self._delete_segments(conn, ids)
            merged = merged.sort_values(col.TIMESTAMP, kind="stable")
            for start in range(0, len(merged), SEGMENT_ROWS):
                self._write_segment(conn, model_id, merged.iloc[start:start + SEGMENT_ROWS])

    def _delete_segments(self, conn, ids: Sequence[int]) -> None:
        for i in range(0, len(ids), MAX_SQL_PARAMS):
            chunk = list(ids[i:i + MAX_SQL_PARAMS])
            marks = ", ".join("?" * len(chunk))
            conn.execute(f"DELETE FROM prediction_segment_columns WHERE segment_id IN ({marks})", chunk)
            conn.execute(f"DELETE FROM prediction_segments WHERE segment_id IN ({marks})", chunk)

    # -- reading ---------------------------------------------------------------------

    def _read_segments(self, conn, segment_ids: Sequence[int], names: Sequence[str] | None) -> pd.DataFrame:
        """Decode whole segments; ``names=None`` reads every stored column."""
        if not segment_ids:
            return pd.DataFrame({n: pd.Series(dtype="float64") for n in names or ()})
        lengths, pieces = {}, {}
        for i in range(0, len(segment_ids), MAX_SQL_PARAMS // 2):
            chunk = list(segment_ids[i:i + MAX_SQL_PARAMS // 2])
            marks = ", ".join("?" * len(chunk))
            lengths.update(conn.execute(
                f"SELECT segment_id, n_rows FROM prediction_segments WHERE segment_id IN ({marks})", chunk))
            sql = f"SELECT segment_id, column_name, encoding, data FROM prediction_segment_columns " \
                  f"WHERE segment_id IN ({marks})"
            params: list[Any] = chunk
            if names is not None:
                sql += f" AND column_name IN ({', '.join('?' * len(names))})"
                params = chunk + list(names)
            for segment_id, name, encoding, blob in conn.execute(sql, params):
                pieces.setdefault(name, {})[segment_id] = _decode(encoding, blob)
        order = list(segment_ids)
        sizes = [lengths[s] for s in order]
        wanted = list(names) if names is not None else list(pieces)
        data = {name: _concat([(s, pieces.get(name, {}).get(s)) for s in order], sizes) for name in wanted}
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
            ids = [r[0] for r in conn.execute(
                "SELECT segment_id FROM prediction_segments WHERE model_id = ? AND ts_max >= ? AND ts_min < ? "
                "ORDER BY ts_min, segment_id", (model_id, start_ms, end_ms))]
            frame = self._read_segments(conn, ids, read)
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
        with self.db.tx(write=False) as conn:
            count, labelled, first, last = conn.execute(
                "SELECT COUNT(*), COUNT(ground_truth), MIN(timestamp), MAX(timestamp) FROM prediction_logs "
                "WHERE model_id = ?", (model_id,)).fetchone()
            ids = [r[0] for r in conn.execute("SELECT segment_id FROM prediction_segments WHERE model_id = ?",
                                              (model_id,))]
            versions = self._read_segments(conn, ids, [col.MODEL_VERSION])[col.MODEL_VERSION] if ids else []
        return base.PredictionSummary(model_id, count, labelled, from_ms(first), from_ms(last),
                                      sorted({v for v in versions if isinstance(v, str)}))

    def find(self, prediction_id):
        with self.db.tx(write=False) as conn:
            row = conn.execute("SELECT pk, model_id, timestamp FROM prediction_logs WHERE prediction_id = ?",
                               (prediction_id,)).fetchone()
            if row is None:
                return None
            pk, model_id, ts = row
            ids = [r[0] for r in conn.execute(
                "SELECT segment_id FROM prediction_segments WHERE model_id = ? AND ts_min <= ? AND ts_max >= ?",
                (model_id, ts, ts))]
            frame = self._read_segments(conn, ids, None)
            labels = conn.execute("SELECT ground_truth, ground_truth_timestamp FROM prediction_logs WHERE pk = ?",
                                  (pk,)).fetchone()
        frame = frame.loc[frame[PK] == pk].drop(columns=[PK]).assign(**{
            col.MODEL_ID: model_id, col.GROUND_TRUTH: labels[0],
            col.GROUND_TRUTH_TIMESTAMP: from_ms(labels[1])})
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
            removed = conn.execute("DELETE FROM prediction_logs WHERE timestamp < ?", (cutoff_ms,)).rowcount
            expired = [r[0] for r in conn.execute("SELECT segment_id FROM prediction_segments WHERE ts_max < ?",
                                                  (cutoff_ms,))]
            self._delete_segments(conn, expired)
            straddling = conn.execute("SELECT segment_id, model_id FROM prediction_segments WHERE ts_min < ?",
                                      (cutoff_ms,)).fetchall()
            for segment_id, model_id in straddling:
                rows = self._read_segments(conn, [segment_id], None)
                self._delete_segments(conn, [segment_id])
                kept = rows.loc[rows[col.TIMESTAMP].astype("int64") >= cutoff_ms]
                if len(kept):
                    self._write_segment(conn, model_id, kept)
        return removed


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

