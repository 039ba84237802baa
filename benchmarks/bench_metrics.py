"""The full metric set on a day at a million predictions, on one core.

    python benchmarks/bench_metrics.py                 # 1,000,000-row window (about two minutes)
    python benchmarks/bench_metrics.py --rows 100000   # quick run

Data: a window of ``--rows`` predictions (default 1,000,000) over 24 hours with 15
numerical and 5 categorical features (several of them drifted), 3 protected attributes,
class probabilities, confidence, labels for half the rows and SHAP values for every
feature, against a baseline built from ``--reference-rows`` (default 100,000).

Measured, each in a fresh subprocess pinned to one core with BLAS/OpenMP threads at 1:

1. ``compute_metrics`` (the product's path, bootstrap on with 200 resamples): best of
   ``--repeat`` runs, the subprocess's peak resident memory (generated data included) and,
   from one more run under ``tracemalloc``, the peak of what ``compute_metrics`` allocates;
2. a naive per-feature reference on the same data: ``scipy.stats.wasserstein_distance`` on
   the raw arrays, ``np.histogram`` PSI and KL and ``value_counts`` TVD per feature, and a
   pandas ``groupby`` per protected attribute with a row-resampling bootstrap. The bootstrap
   runs ``--naive-resamples`` resamples (default 10) and its time is scaled linearly to 200
   so both sides do the same work; the measured part is printed too.

Also printed: the time to build the baseline from the reference rows (not part of the
target). No figure here is asserted anywhere; the README quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP_RESAMPLES = 200


def pin_to_one_core() -> None:
    """Call before numpy is imported: one core, one thread everywhere."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                 "VECLIB_MAXIMUM_THREADS"):
        os.environ[name] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def make_frames(rows: int, reference_rows: int, seed: int = 0):
    """(reference, window) canonical frames; the window drifts on a few features and groups."""
    import numpy as np
    import pandas as pd

    from monitoring_core.models import columns as col

    def frame(n: int, rng, drift: bool) -> pd.DataFrame:
        start = pd.Timestamp("2026-10-01", tz="UTC")
        stamps = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000, n)), unit="ms")
        data = {col.TIMESTAMP: pd.Series(stamps).astype("datetime64[ms, UTC]")}
        for i in range(15):
            shift = 0.3 * (i % 3) if drift else 0.0
            values = rng.lognormal(0.1 * i + shift, 0.5, n) if i % 2 else rng.normal(10 * i + shift * (1 + i), 1 + i, n)
            if i in (3, 7):
                values[rng.random(n) < (0.08 if drift else 0.02)] = np.nan
            data[col.feature(f"num_{i}")] = values
        for i in range(5):
            categories = [f"c{k}" for k in range(4 + 3 * i)] + (["unseen"] if drift and i == 0 else [])
            weights = np.linspace(1, 2, len(categories))
            data[col.feature(f"cat_{i}")] = pd.Series(rng.choice(categories, n, p=weights / weights.sum()), dtype="str")
        groups = {"gender": ["female", "male", "nonbinary"], "age_group": ["18-29", "30-44", "45-59", "60+"],
                  "race": ["a", "b", "c", "d", "e"]}
        for name, values in groups.items():
            p = np.array([0.6, 0.395, 0.005]) if name == "gender" else None
            data[col.protected(name)] = pd.Series(rng.choice(values, n, p=p), dtype="str")
        score = 1 / (1 + np.exp(-(data[col.feature("num_0")] - 0.0) / 3))
        if drift:
            score = np.where(data[col.protected("gender")] == "female", score * 0.85, score)
        approve = np.clip(score + rng.normal(0, 0.1, n), 0, 1)
        data[col.PREDICTED_CLASS] = pd.Series(np.where(approve > 0.5, "approve", "reject"), dtype="str")
        data[col.CONFIDENCE] = np.maximum(approve, 1 - approve)
        data[col.probability("approve")] = approve
        data[col.probability("reject")] = 1 - approve
        truth = np.where(rng.random(n) < approve, "approve", "reject")
        data[col.GROUND_TRUTH] = pd.Series(np.where(rng.random(n) < 0.5, truth, None), dtype="str")
        for i in range(15):
            data[col.explanation(f"num_{i}")] = rng.normal(0, 0.05 * (i + 1), n)
        for i in range(5):
            data[col.explanation(f"cat_{i}")] = rng.normal(0, 0.02 * (i + 1), n)
        return pd.DataFrame(data)

    rng = np.random.default_rng(seed)
    return frame(reference_rows, rng, drift=False), frame(rows, rng, drift=True)


def config():
    from monitoring_core.models.thresholds import MonitoringConfig

    return MonitoringConfig(positive_label="approve", protected_attributes=["gender", "age_group", "race"],
                            bootstrap_resamples=BOOTSTRAP_RESAMPLES)


def child_engine(rows: int, reference_rows: int, repeat: int) -> dict:
    import time

    from monitoring_core.metrics import build_baseline, compute_metrics

    reference, window = make_frames(rows, reference_rows)
    began = time.perf_counter()
    baseline = build_baseline(reference, config(), model_id="bench", model_version="1")
    build_s = time.perf_counter() - began
    del reference
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        record = compute_metrics(window, baseline, config())
        times.append(time.perf_counter() - began)
    import tracemalloc  # one more run, traced: what compute_metrics itself allocates at its peak

    tracemalloc.start()
    compute_metrics(window, baseline, config())
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": min(times), "all_seconds": times, "build_baseline_seconds": build_s,
            "compute_peak_mb": traced_peak / 2**20,
            "window_mb": window.memory_usage(deep=True).sum() / 2**20,
            "record_kb": len(record.model_dump_json()) / 1024, "baseline_kb": len(baseline.model_dump_json()) / 1024,
            "max_severity": str(record.max_severity), "aggregated_score": record.aggregated_score,
            "breaches": len(record.breaches())}


def naive_metrics(reference, window, resamples: int) -> dict:
    """The obvious implementation, one feature and one attribute at a time."""
    import time

    import numpy as np
    from scipy.stats import wasserstein_distance

    from monitoring_core.models import columns as col

    out = {}
    began = time.perf_counter()
    eps = 1e-4
    for name in col.names_with_prefix(reference.columns, col.FEATURE_PREFIX):
        ref, cur = reference[col.feature(name)], window[col.feature(name)]
        if name.startswith("num"):
            r, c = ref.dropna().to_numpy(), cur.dropna().to_numpy()
            edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            rp = np.histogram(r, edges)[0] / r.size
            cp = np.histogram(c, edges)[0] / c.size
            out[f"wasserstein:{name}"] = wasserstein_distance(r, c) / r.std()
        else:
            rc, cc = ref.value_counts(normalize=True), cur.value_counts(normalize=True)
            union = rc.index.union(cc.index)
            rp, cp = rc.reindex(union, fill_value=0).to_numpy(), cc.reindex(union, fill_value=0).to_numpy()
            out[f"tvd:{name}"] = 0.5 * np.abs(cp - rp).sum()
        rs, cs = np.maximum(rp, eps), np.maximum(cp, eps)
        rs, cs = rs / rs.sum(), cs / cs.sum()
        out[f"psi:{name}"] = np.sum((cs - rs) * np.log(cs / rs))
        out[f"kl:{name}"] = np.sum(cs * np.log(cs / rs))
        out[f"missing:{name}"] = cur.isna().mean() - ref.isna().mean()
    features_s = time.perf_counter() - began

    began = time.perf_counter()
    attributes = [col.protected(a) for a in ("gender", "age_group", "race")]
    frame = window[[col.PREDICTED_CLASS, col.GROUND_TRUTH, *attributes]]
    frame = frame.assign(pos=(frame[col.PREDICTED_CLASS] == "approve"), truth=(frame[col.GROUND_TRUTH] == "approve"))

    def gaps(f, attribute):
        sr = f.groupby(col.protected(attribute))["pos"].mean()
        tpr = f[f["truth"]].groupby(col.protected(attribute))["pos"].mean()
        return sr.max() - sr.min(), tpr.max() - tpr.min(), sr.min() / sr.max()

    for attribute in ("gender", "age_group", "race"):
        out[f"fairness:{attribute}"] = gaps(frame, attribute)
    point_s = time.perf_counter() - began

    began = time.perf_counter()
    rng = np.random.default_rng(0)
    for attribute in ("gender", "age_group", "race"):
        for _ in range(resamples):
            # stratified: resample rows within each group
            sample = frame.groupby(col.protected(attribute), group_keys=False).sample(frac=1.0, replace=True,
                                                                                      random_state=rng)
            gaps(sample, attribute)
    bootstrap_s = time.perf_counter() - began
    return {"features_s": features_s, "fairness_point_s": point_s, "bootstrap_measured_s": bootstrap_s,
            "bootstrap_resamples_run": resamples}


def child_naive(rows: int, reference_rows: int, resamples: int) -> dict:
    reference, window = make_frames(rows, reference_rows)
    result = naive_metrics(reference, window, resamples)
    scaled = result["bootstrap_measured_s"] * BOOTSTRAP_RESAMPLES / max(resamples, 1)
    result["seconds"] = result["features_s"] + result["fairness_point_s"] + scaled
    result["bootstrap_scaled_s"] = scaled
    return result


def run_child(kind: str, args) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--rows", str(args.rows), "--reference-rows",
               str(args.reference_rows), "--repeat", str(args.repeat), "--naive-resamples", str(args.naive_resamples)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{kind} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="window rows (default 1,000,000)")
    parser.add_argument("--reference-rows", type=int, default=100_000, help="baseline rows (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed compute_metrics runs (best is reported)")
    parser.add_argument("--naive-resamples", type=int, default=10,
                        help="bootstrap resamples actually run by the naive reference (scaled to 200)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child", choices=["engine", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        pin_to_one_core()
        sys.path.insert(0, str(ROOT))
        import resource

        result = (child_engine(args.rows, args.reference_rows, args.repeat) if args.child == "engine"
                  else child_naive(args.rows, args.reference_rows, args.naive_resamples))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(json.dumps(result))
        return

    print(f"window {args.rows:,} rows x (15 numerical + 5 categorical features, 3 protected attributes, "
          f"SHAP for 20), baseline from {args.reference_rows:,} rows; one core; bootstrap "
          f"{BOOTSTRAP_RESAMPLES} resamples", flush=True)
    engine = run_child("engine", args)
    print(f"  compute_metrics                 {engine['seconds']:7.2f} s  (best of {args.repeat}: "
          f"{', '.join(f'{t:.2f}' for t in engine['all_seconds'])})")
    print(f"  peak memory (process, data incl.) {engine['peak_rss_mb']:6.0f} MB  (window itself "
          f"{engine['window_mb']:.0f} MB; compute_metrics' own peak allocation {engine['compute_peak_mb']:.0f} MB)")
    print(f"  build_baseline ({args.reference_rows:,} rows)  {engine['build_baseline_seconds']:7.2f} s;  baseline "
          f"{engine['baseline_kb']:.0f} KB, record {engine['record_kb']:.0f} KB as JSON")
    print(f"  result: max_severity {engine['max_severity']}, aggregated score {engine['aggregated_score']:.3f}, "
          f"{engine['breaches']} breaches")
    if args.skip_naive:
        return
    naive = run_child("naive", args)
    print(f"  naive per-feature scipy/pandas  {naive['seconds']:7.2f} s  (features {naive['features_s']:.2f} s, "
          f"fairness {naive['fairness_point_s']:.2f} s, bootstrap {naive['bootstrap_measured_s']:.2f} s for "
          f"{naive['bootstrap_resamples_run']} resamples -> {naive['bootstrap_scaled_s']:.1f} s for "
          f"{BOOTSTRAP_RESAMPLES}); peak {naive['peak_rss_mb']:.0f} MB")
    print(f"  ratio naive / compute_metrics    {naive['seconds'] / engine['seconds']:7.1f} x")
    print(f"  ratio without the bootstrap      "
          f"{(naive['features_s'] + naive['fairness_point_s']) / engine['seconds']:7.1f} x")


if __name__ == "__main__":
    main()
