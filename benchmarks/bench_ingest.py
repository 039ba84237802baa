"""Ingest and read-back throughput of the embedded store.

    python benchmarks/bench_ingest.py              # 1,000,000 predictions (about a minute)
    python benchmarks/bench_ingest.py --rows 100000

Measures, on a fresh database in a temporary folder:

1. the SDK: ``PredictionLogger.log`` for every prediction with the default batching
   (10 records or 5 s), until everything is stored;
2. bulk ingest: ``ingest_frame`` (validation + storage) of a DataFrame of predictions with
   15 numerical and 5 categorical features, 3 protected attributes and labels for half;
3. reading the whole window back as a DataFrame of the analysis columns.

Each figure is compared with a named reference measured in the same run on the same data:
the obvious row-per-prediction SQLite table (one column per field, ``executemany`` to
write, ``pandas.read_sql_query`` to read).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_core.ingest import PredictionLogger, ingest_frame  # noqa: E402
from monitoring_core.models import columns as col  # noqa: E402
from monitoring_core.storage.sqlite import SqliteStore  # noqa: E402

START = pd.Timestamp("2026-10-01", tz="UTC")


def make_predictions(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stamps = START + pd.to_timedelta(np.sort(rng.integers(0, 30 * 86_400_000, rows)), unit="ms")
    approve = rng.random(rows)
    frame = pd.DataFrame({
        col.PREDICTION_ID: pd.Series([f"p{i:09d}" for i in range(rows)], dtype="str"),
        col.MODEL_ID: "bench", col.MODEL_VERSION: "1.0",
        col.TIMESTAMP: pd.Series(stamps).astype("datetime64[ms, UTC]"),
        col.PREDICTED_CLASS: pd.Series(np.where(approve > 0.5, "approve", "reject"), dtype="str"),
        col.CONFIDENCE: np.maximum(approve, 1 - approve),
        col.probability("approve"): approve, col.probability("reject"): 1 - approve,
        col.GROUND_TRUTH: pd.Series(np.where(rng.random(rows) < 0.5, "approve", None), dtype="str"),
    })
    for i in range(15):
        frame[col.feature(f"num_{i}")] = rng.normal(i, 1 + i, rows)
    for i in range(5):
        frame[col.feature(f"cat_{i}")] = pd.Series(rng.choice([f"c{k}" for k in range(6 + i)], rows), dtype="str")
    for name, groups in (("gender", ["female", "male"]), ("age_group", ["18-29", "30-44", "45-59", "60+"]),
                         ("race", ["a", "b", "c", "d"])):
        frame[col.protected(name)] = pd.Series(rng.choice(groups, rows), dtype="str")
    return frame


def analysis_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (col.PREDICTION_ID, col.MODEL_ID, col.MODEL_VERSION)]


def timed(label: str, action):
    began = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - began
    print(f"  {label:<58} {elapsed:8.2f} s", flush=True)
    return result, elapsed


def bench_sdk(folder: Path, rows: int) -> float:
    store = SqliteStore(folder / "sdk.db")
    store.ensure_schema()
    logger = PredictionLogger(store)  # defaults: batches of 10 or every 5 s
    rng = np.random.default_rng(1)
    values = rng.normal(size=(rows, 3))

    def log_all():
        for i in range(rows):
            logger.log(model_id="bench", model_version="1.0", prediction="approve", confidence=0.8,
                       features={"a": float(values[i, 0]), "b": float(values[i, 1]), "c": "x"},
                       protected_attributes={"gender": "female"}, timestamp=START + timedelta(seconds=i))
        logger.flush()

    _, elapsed = timed(f"SDK: log {rows:,} predictions until stored", log_all)
    stats = logger.close()
    assert stats.written == rows, stats
    store.close()
    return rows / elapsed


def reference_row_store(folder: Path, frame: pd.DataFrame, columns: list[str]) -> tuple[float, float]:
    """The obvious design: one row per prediction, one column per field."""
    conn = sqlite3.connect(folder / "reference.db")
    conn.execute("PRAGMA journal_mode=WAL")
    names = [f'"{c}"' for c in frame.columns]
    conn.execute(f"CREATE TABLE predictions ({', '.join(names)}, UNIQUE(\"{col.PREDICTION_ID}\"))")
    conn.execute(f'CREATE INDEX ix ON predictions("{col.MODEL_ID}", "{col.TIMESTAMP}")')
    stored = frame.assign(**{col.TIMESTAMP: frame[col.TIMESTAMP].astype("int64")})
    rows = list(stored.astype(object).where(stored.notna(), None).itertuples(index=False, name=None))

    def write():
        with conn:
            conn.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * len(names))})", rows)

    _, write_s = timed("reference row table: write", write)
    query = (f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} FROM predictions "
             f'WHERE "{col.MODEL_ID}" = ? AND "{col.TIMESTAMP}" >= ? AND "{col.TIMESTAMP}" < ?')
    _, read_s = timed("reference row table: read the window (pandas.read_sql_query)",
                      lambda: pd.read_sql_query(query, conn, params=("bench", 0, 2**62)))
    conn.close()
    return write_s, read_s


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="predictions for bulk ingest and read-back")
    parser.add_argument("--sdk-rows", type=int, default=50_000, help="predictions logged through the SDK")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"Fairwatch ingest benchmark: {args.rows:,} predictions, 15 numerical + 5 categorical features, "
              "3 protected attributes, labels on half")
        frame, _ = timed("generate the data", lambda: make_predictions(args.rows))
        columns = analysis_columns(frame)
        sdk_rate = bench_sdk(folder, args.sdk_rows)

        store = SqliteStore(folder / "fairwatch.db")
        store.ensure_schema()
        report, ingest_s = timed("bulk ingest: ingest_frame (validate + store)", lambda: ingest_frame(store, frame))
        assert report.inserted == args.rows and not report.rejected
        end = START + pd.Timedelta(days=31)
        window, read_s = timed(f"read the window: {len(columns)} analysis columns",
                               lambda: store.predictions.window("bench", START, end, columns))
        assert len(window) == args.rows
        features_only = [c for c in columns if c.startswith(col.FEATURE_PREFIX)] + [col.TIMESTAMP]
        _, features_s = timed("read the window: features + timestamp only",
                              lambda: store.predictions.window("bench", START, end, features_only))
        # Lookups that must not grow with the data: one segment for find, metadata for summary.
        _, summary_s = timed("summary (counts, span, versions)", lambda: store.predictions.summary("bench"))
        _, find_s = timed("find one prediction by id", lambda: store.predictions.find(f"p{args.rows // 2:09d}"))
        store.close()
        ref_write_s, ref_read_s = reference_row_store(folder, frame, columns)

    print("\nResults")
    print(f"  SDK logging (batches of 10):      {sdk_rate:>12,.0f} predictions/s")
    print(f"  bulk ingest:                      {args.rows / ingest_s:>12,.0f} predictions/s "
          f"(target >= 50,000; reference row table write {args.rows / ref_write_s:,.0f}/s, no validation)")
    print(f"  read {args.rows:,} x {len(columns)} columns:  {read_s:>10.2f} s "
          f"(target < 5 s; reference row table {ref_read_s:.2f} s: {ref_read_s / read_s:.1f}x slower)")
    print(f"  read features only:               {features_s:>10.2f} s")
    print(f"  summary / find one prediction:    {summary_s * 1000:>8.1f} ms / {find_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
