"""Bulk-ingest validation of a wide file against a long one with the same number of cells.

    python benchmarks/bench_ingest_wide.py                 # 100 x 10,000 against 10,000 x 100
    python benchmarks/bench_ingest_wide.py --cells 200000

Validation (``validate_frame``) should cost what the cells cost, not what the columns
cost: the ratio wide / long stays near 1 when there is no per-column overhead (it was
about 15 before columns were checked in groups). Half the feature columns are numbers
written as text, half are categories, as a CSV reads them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_core.ingest.bulk import validate_frame


def csv_like(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {"prediction_id": [f"p{i}" for i in range(rows)], "timestamp": ["2026-11-01T10:00:00Z"] * rows,
            "prediction": ["approve"] * rows, "confidence": ["0.9"] * rows}
    for c in range(columns):
        data[f"features.f{c}"] = (rng.normal(size=rows).round(3).astype(str) if c % 2
                                  else rng.choice(["a", "b", "c"], rows))
    return pd.DataFrame(data).astype(object)


def timed_validation(frame: pd.DataFrame) -> float:
    began = time.perf_counter()
    validate_frame(frame, np.arange(1, len(frame) + 1), model_id="bench", model_version="1")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    args = parser.parse_args()
    wide, long = (100, args.cells // 100), (args.cells // 100, 100)
    results = {}
    for label, (rows, columns) in (("long", long), ("wide", wide)):
        results[label] = timed_validation(csv_like(rows, columns))
        print(f"  validate {rows:>9,} rows x {columns:>6,} feature columns ({label}) {results[label]:8.2f} s", flush=True)
    print(f"  wide / long: {results['wide'] / results['long']:.2f}  (1.0 = no per-column cost)")


if __name__ == "__main__":
    main()
