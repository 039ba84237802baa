"""Writing the demo into a store: the CLI's ``seed-demo`` and the app's first start.

:mod:`monitoring_core.demo` generates the data (pure, no I/O); this module stores it. The
demo is seeded into a store on a first start only when it is an *empty embedded* store and
``FAIRWATCH_SEED_DEMO`` is true (the default): a MongoDB deployment never gets demo data by
surprise. The CLI and the app use the same seed, so both give the same demo.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from . import analysis, audit, baselines
from .config import Settings
from .demo import DEFAULT_SEED, DEMO_MODELS, demo_end, generate_predictions, generate_reference
from .ingest.bulk import store_rows
from .models.audit import AuditEvent
from .models.common import SYSTEM
from .models.registry import RegisteredModel
from .models.thresholds import MonitoringConfig
from .users import ensure_demo_users

_seed_lock = threading.Lock()


@dataclass(frozen=True)
class DemoReport:
    """What :func:`seed_demo` stored, per model."""

    predictions: dict[str, int]
    baselines: dict[str, str]
    analyses: dict[str, int]

    def __str__(self) -> str:
        return "; ".join(f"{m}: {n:,} predictions, active baseline {self.baselines[m]}"
                         for m, n in self.predictions.items())


HISTORY_DAYS = 30


def seed_demo(store, *, actor=None, seed: int = DEFAULT_SEED, end: datetime | None = None,
              progress=None, history_days: int = HISTORY_DAYS) -> DemoReport:
    """Register the demo models, give each an active baseline from its validation set,
    store its 60 days of predictions and analyse each of the last ``history_days`` days, so
    the pages have a history from the first start. Every step is audited.

    ``progress(fraction, message)`` is called as the work advances (CLI bar, app status).
    Seeding twice with the same seed and ``end`` stores nothing twice (ids are fixed).
    """
    actor = actor or SYSTEM
    end = demo_end(end)
    report = progress or (lambda fraction, message: None)
    stored: dict[str, int] = {}
    snapshots: dict[str, str] = {}
    analysed: dict[str, int] = {}
    steps = len(DEMO_MODELS) * 4
    for index, model in enumerate(DEMO_MODELS):
        done = index * 4
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
        report((done + 3) / steps, f"{model.model_id}: analysing the last {history_days} days")
        analysed[model.model_id] = _analyse_daily(store, model.model_id, end, history_days, actor)
    report(1.0, "demo ready")
    return DemoReport(stored, snapshots, analysed)


def _analyse_daily(store, model_id: str, end: datetime, days: int, actor) -> int:
    """One analysis per whole UTC day before ``end``, oldest first, as the daily schedule
    would have run them; days already analysed are left alone. Returns the runs made."""
    last_midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    day_ends = [last_midnight - timedelta(days=back) for back in range(days - 1, -1, -1)]
    done = {r.analysis_period.end for r in store.records.history(model_id, day_ends[0], last_midnight
                                                                   + timedelta(seconds=1))}
    todo = [day_end for day_end in day_ends if day_end not in done]
    for day_end in todo:
        analysis.run_analysis(store, model_id, analysis.Window(day_end - timedelta(days=1), day_end),
                              trigger="scheduled", actor=actor)
    return len(todo)


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
