"""What Fairwatch monitors: the registered models, one overview row per model, and its
prediction volume over time.

Registering a model (risk level, positive class, protected attributes) is what makes it
monitored; the overview figures are what the app's landing page shows and read only
counts and the ``timestamp``/``ground_truth`` columns, never features.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from . import audit, auth, clock
from .models import columns as col
from .models.audit import AuditEvent
from .models.common import Actor
from .models.registry import RegisteredModel
from .models.thresholds import MonitoringConfig

OVERVIEW_COLUMNS = ["model_id", "display_name", "risk_level", "predictions", "labelled", "first_prediction",
                    "last_prediction", "model_versions", "active_baseline"]


def register_model(store, config: MonitoringConfig, *, model_id: str, actor: Actor,
                   display_name: str | None = None, description: str | None = None,
                   owner: str | None = None) -> RegisteredModel:
    """Register a model for monitoring, or change an existing registration (its creation
    time is kept); permission-checked and audited in one unit of work."""
    auth.require(actor, auth.Permission.MANAGE_MODELS)
    with store.transaction():
        existing = store.models.find(model_id)
        given = {"display_name": display_name, "description": description, "owner": owner}
        if existing is None:
            model = RegisteredModel(model_id=model_id, monitoring=config, **given)
        else:  # what is not given (and state such as a freeze) stays as it was
            model = RegisteredModel.model_validate({
                **existing.model_dump(), **{k: v for k, v in given.items() if v is not None},
                "monitoring": config, "updated_at": clock.now()})
        store.models.upsert(model)
        audit.record(store, AuditEvent.MODEL_UPDATED if existing else AuditEvent.MODEL_REGISTERED, actor,
                     target={"model_id": model_id},
                     details={"risk_level": str(config.risk_level), "positive_label": config.positive_label,
                              "protected_attributes": list(config.protected_attributes)})
    return store.models.get(model_id)


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
