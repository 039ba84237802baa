"""What Fairwatch monitors: one row per model, and its prediction volume over time.

These are the figures the app's landing page shows; they read only counts and the
``timestamp``/``ground_truth`` columns, never features.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from .models import columns as col

OVERVIEW_COLUMNS = ["model_id", "display_name", "risk_level", "predictions", "labelled", "first_prediction",
                    "last_prediction", "model_versions", "active_baseline"]


def models_overview(store) -> pd.DataFrame:
    """One row per model that has predictions or is registered."""
    registered = {m.model_id: m for m in store.models.list()}
    rows = []
    for model_id in sorted(set(store.predictions.model_ids()) | set(registered)):
        summary = store.predictions.summary(model_id)
        model = registered.get(model_id)
        baseline = store.baselines.active(model_id)
        rows.append({
            "model_id": model_id,
            "display_name": model.display_name if model else None,
            "risk_level": str(model.monitoring.risk_level) if model else None,
            "predictions": summary.count,
            "labelled": summary.labelled,
            "first_prediction": summary.first,
            "last_prediction": summary.last,
            "model_versions": ", ".join(summary.model_versions),
            "active_baseline": baseline.snapshot_id if baseline else None,
        })
    return pd.DataFrame(rows, columns=OVERVIEW_COLUMNS)


def daily_volume(store, model_id: str, end: datetime, days: int = 60) -> pd.DataFrame:
    """Predictions and labelled predictions per UTC day over the ``days`` before ``end``."""
    window = store.predictions.window(model_id, end - timedelta(days=days), end, [col.TIMESTAMP, col.GROUND_TRUTH])
    day = window[col.TIMESTAMP].dt.floor("D")
    counts = pd.DataFrame({"day": day, "labelled": window[col.GROUND_TRUTH].notna()})
    daily = counts.groupby("day").agg(predictions=("labelled", "size"), labelled=("labelled", "sum")).reset_index()
    return daily.astype({"predictions": "int64", "labelled": "int64"})
