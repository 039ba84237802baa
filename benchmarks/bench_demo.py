"""Generation speed of the demo data (what the app's first start waits for).

    python benchmarks/bench_demo.py

Generates both demo models (validation set and 60 days of predictions) and compares the
time with a named reference measured in the same run: drawing the same number of values
with one ``numpy.random.Generator.normal`` call, the floor for any vectorised generator.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring_core import demo  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=UTC)


def generate_all() -> int:
    cells = 0
    for model in demo.DEMO_MODELS:
        for frame in (demo.generate_reference(model, end=END), demo.generate_predictions(model, end=END)):
            cells += frame.size
    return cells


def main() -> None:
    demo._training_centring.cache_clear()
    started = time.perf_counter()
    cells = generate_all()
    generation = time.perf_counter() - started

    started = time.perf_counter()
    np.random.default_rng(0).normal(size=cells)
    reference = time.perf_counter() - started

    print(f"demo generation, both models ({cells:,} cells): {generation:.2f} s")
    print(f"reference, numpy normal draws of as many values: {reference:.3f} s "
          f"(generation costs {generation / reference:.0f}x the raw draws)")


if __name__ == "__main__":
    main()
