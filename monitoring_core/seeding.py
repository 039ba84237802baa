"""Writing the demo into a store: the CLI's ``seed-demo`` and the app's first start.

:mod:`monitoring_core.demo` generates the data (pure, no I/O); this module stores it. The
demo is seeded into a store on a first start only when it is an *empty embedded* store and
``FAIRWATCH_SEED_DEMO`` is true (the default): a MongoDB deployment never gets demo data by
surprise. The CLI and the app use the same seed, so both give the same demo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from . import audit, baselines
from .config import Settings
from .demo import DEFAULT_SEED, DEMO_MODELS, demo_end, generate_predictions, generate_reference
from .ingest.bulk import store_rows
from .users import ensure_demo_users
from .models.audit import AuditEvent
from .models.common import SYSTEM
from .models.registry import RegisteredModel
from .models.thresholds import MonitoringConfig

_seed_lock = threading.Lock()


@dataclass(frozen=True)
class DemoReport:
    """What :func:`seed_demo` stored, per model."""

    predictions: dict[str, int]
    baselines: dict[str, str]

    def __str__(self) -> str:
        return "; ".join(f"{m}: {n:,} predictions, active baseline {self.baselines[m]}"
                         for m, n in self.predictions.items())


def seed_demo(store, *, actor=None, seed: int = DEFAULT_SEED, end: datetime | None = None,
              progress=None) -> DemoReport:
    """Register the demo models, give each an active baseline from its validation set and
    store its 60 days of predictions. Every step is audited.

    ``progress(fraction, message)`` is called as the work advances (CLI bar, app status).
    Seeding twice with the same seed and ``end`` stores nothing twice (ids are fixed).
    """
    actor = actor or SYSTEM
    end = demo_end(end)
    report = progress or (lambda fraction, message: None)
    stored: dict[str, int] = {}
    snapshots: dict[str, str] = {}
    steps = len(DEMO_MODELS) * 3
    for index, model in enumerate(DEMO_MODELS):
        done = index * 3
        report(done / steps, f"{model.model_id}: registering")
        config = MonitoringConfig(risk_level=model.risk_level, positive_label=model.positive_label,
                                  protected_attributes=list(model.protected_attributes))
        store.models.upsert(RegisteredModel(model_id=model.model_id, display_name=model.display_name,
                                            description=model.description, owner=model.owner, monitoring=config))
        audit.record(store, AuditEvent.MODEL_REGISTERED, actor, target={"model_id": model.model_id},
                     details={"risk_level": model.risk_level, "source": "demo"})
        report((done + 1) / steps, f"{model.model_id}: building the baseline")
        reference = generate_reference(model, seed=seed, end=end)
        snapshot = baselines.create_baseline(
            store, reference, model_id=model.model_id, model_version=model.model_version, config=config,
            actor=actor, activate=True, dataset_version=f"demo validation set (seed {seed})")
        snapshots[model.model_id] = snapshot.snapshot_id
        report((done + 2) / steps, f"{model.model_id}: storing predictions")
        predictions = generate_predictions(model, end=end, seed=seed)
        inserted, _ = store_rows(store, predictions, np.arange(1, len(predictions) + 1))
        stored[model.model_id] = inserted
        audit.record(store, AuditEvent.DEMO_SEEDED, actor, target={"model_id": model.model_id},
                     details={"predictions": inserted, "seed": seed, "end": end.isoformat()})
    report(1.0, "demo ready")
    return DemoReport(stored, snapshots)


def needs_demo(store, settings: Settings) -> bool:
    return settings.demo_mode and store.is_empty()


def seed_demo_once(store, settings: Settings, progress=None) -> DemoReport | None:
    """Seed the demo if it is needed; one thread at a time (several browser sessions may
    open the app at once). Returns the demo report, or None if nothing was done."""
    with _seed_lock:
        if not needs_demo(store, settings):
            return None
        report = seed_demo(store, progress=progress)
        # Demo mode only: one user per role with the passwords the README lists.
        ensure_demo_users(store)
        return report
