"""One analysis run end to end on the embedded store, by phase.

    python benchmarks/bench_analysis.py                          # 10,000 / 100,000 / 1,000,000
    python benchmarks/bench_analysis.py --sizes 10000 100000     # quick run

Data: the window of ``bench_metrics.py`` (15 numerical + 5 categorical features, several
drifted, 3 protected attributes with a fairness regression, class probabilities, labels on
half, SHAP values) over one day, against a baseline built from ``--reference-rows``; the
model is registered with bootstrap on (200 resamples). Pinned to one core.

For each window size, on a fresh database: ``run_analysis`` (permission, lease, count,
read of the needed columns, baseline, ``compute_metrics``, then incidents + record + audit
entry in one transaction), timed by phase through its progress callback. The reference,
measured in the same run on the same store: ``store.predictions.window`` of the same
columns and ``compute_metrics`` on that frame, each alone; their sum is the least a run
can cost, and the difference is what the run adds (lease, count, incidents, record,
audit). Target: under 10 s for 1,000,000 predictions. No figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_metrics import config, make_frames, pin_to_one_core

MODEL = "bench"


def store_with_model(folder: Path, reference, window):
    import pandas as pd

    from monitoring_core import baselines
    from monitoring_core.models import columns as col
    from monitoring_core.models.common import SYSTEM
    from monitoring_core.models.registry import RegisteredModel
    from monitoring_core.storage.sqlite import SqliteStore

    store = SqliteStore(folder / "fairwatch.db")
    store.ensure_schema()
    store.models.upsert(RegisteredModel(model_id=MODEL, monitoring=config()))
    baselines.create_baseline(store, reference, model_id=MODEL, model_version="1", config=config(), actor=SYSTEM)
    ids = pd.Series([f"p{i:09d}" for i in range(len(window))], index=window.index, dtype="str")
    store.predictions.insert_frame(window.assign(**{col.PREDICTION_ID: ids, col.MODEL_ID: MODEL,
                                                    col.MODEL_VERSION: "1"}))
    return store


def timed_run(store, window):
    """``run_analysis`` with the time of each phase, read from its progress messages."""
    from monitoring_core.analysis import run_analysis
    from monitoring_core.models.common import SYSTEM

    marks: list[tuple[str, float]] = []
    began = time.perf_counter()
    record = run_analysis(store, MODEL, window, trigger="scheduled", actor=SYSTEM,
                          progress=lambda fraction, message: marks.append((message.split(":")[0],
                                                                           time.perf_counter())))
    total = time.perf_counter() - began
    (_, read), (_, compute), (_, write), (_, done) = marks
    return record, {"before": read - began, "read": compute - read, "compute": write - compute,
                    "write": done - write, "total": total}


def reference(store, window, record):
    """Reading the same columns and computing the metrics, each alone."""
    from monitoring_core.analysis import columns_to_read
    from monitoring_core.metrics import compute_metrics

    model = store.models.get(MODEL)
    baseline = store.baselines.active(MODEL)
    columns = columns_to_read(store, MODEL, baseline, model)
    began = time.perf_counter()
    frame = store.predictions.window(MODEL, window.start, window.end, columns)
    read = time.perf_counter() - began
    began = time.perf_counter()
    again = compute_metrics(frame, baseline, model.monitoring, period_start=window.start, period_end=window.end)
    compute = time.perf_counter() - began
    assert again.max_severity == record.max_severity and len(frame) == record.sample_count
    return {"read": read, "compute": compute, "columns": len(columns)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--reference-rows", type=int, default=50_000)
    args = parser.parse_args(argv)
    pin_to_one_core()

    import pandas as pd

    from monitoring_core.analysis import Window

    print(f"Fairwatch analysis benchmark: windows of {', '.join(f'{n:,}' for n in args.sizes)} predictions, "
          f"baseline from {args.reference_rows:,} rows, one core")
    reference_frame, full = make_frames(max(args.sizes), args.reference_rows)
    start = pd.Timestamp("2026-10-01", tz="UTC").to_pydatetime()
    window = Window(start, start + pd.Timedelta(days=1).to_pytimedelta())
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            # Every size spans the whole day: a random subset, in time order.
            subset = full.sample(n=size, random_state=0).sort_index() if size < len(full) else full
            store = store_with_model(Path(tmp), reference_frame, subset)
            # Warm the page cache once so neither the run nor the reference reads a cold file.
            store.predictions.window(MODEL, window.start, window.end, list(subset.columns))
            record, phases = timed_run(store, window)
            alone = reference(store, window, record)
            store.close()
        rows.append((size, record, phases, alone))
        print(f"  {size:>9,}: run {phases['total']:.2f} s (read {phases['read']:.2f}, compute {phases['compute']:.2f}, "
              f"write {phases['write']:.3f}, before {phases['before']:.3f}); {record.max_severity}, "
              f"{len(record.incident_ids)} incidents", flush=True)

    print("\nResults (seconds)")
    print(f"  {'predictions':>11} {'run':>6} {'read':>6} {'compute':>8} {'write':>6} | {'read alone':>10} "
          f"{'compute alone':>13} {'run / (read + compute alone)':>29}")
    for size, record, phases, alone in rows:
        floor = alone["read"] + alone["compute"]
        print(f"  {size:>11,} {phases['total']:>6.2f} {phases['read']:>6.2f} {phases['compute']:>8.2f} "
              f"{phases['write']:>6.3f} | {alone['read']:>10.2f} {alone['compute']:>13.2f} "
              f"{phases['total'] / floor:>28.2f}x")
    print(f"  target: run under 10 s at 1,000,000 predictions ({rows[-1][3]['columns']} columns read)")


if __name__ == "__main__":
    main()
