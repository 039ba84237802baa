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

from . import analysis, audit, baselines, clock
from . import incidents as incident_rules
from .config import Settings
from .demo import DEFAULT_SEED, DEMO_MODELS, demo_end, generate_predictions, generate_reference
from .ingest.bulk import store_rows
from .models.audit import AuditEvent
from .models.common import SYSTEM, Actor
from .models.delivery import DeliveryStatus
from .models.incidents import IncidentStatus
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
#: The daily analysis runs at 02:00 UTC (policy 1.1), over the day before.
DAILY_SLOT = timedelta(hours=2)


def seed_demo(store, *, actor=None, seed: int = DEFAULT_SEED, end: datetime | None = None,
              progress=None, history_days: int = HISTORY_DAYS) -> DemoReport:
    """Register the demo models, give each an active baseline from its validation set,
    store its 60 days of predictions and analyse each of the last ``history_days`` days, so
    the pages have a history from the first start. Every step is audited.

    The history is replayed as it would have happened: the models are registered before
    the first analysed day and each day is analysed at its 02:00 slot, so records,
    incidents, alerts and audit entries carry those times (the Incident Timeline shows
    since when, and the SLA figures count from then). Only the newest day's notifications
    are sent; those of the replayed days are recorded as cancelled.

    ``progress(fraction, message)`` is called as the work advances (CLI bar, app status).
    Seeding twice with the same seed and ``end`` stores nothing twice (ids are fixed).
    """
    actor = actor or SYSTEM
    end = demo_end(end)
    report = progress or (lambda fraction, message: None)
    day_ends = _history(end, history_days)
    steps = len(DEMO_MODELS) * 3 + len(day_ends)
    stored: dict[str, int] = {}
    snapshots: dict[str, str] = {}
    with clock.replaying(_replay_time(store, day_ends[0] - timedelta(days=1))):  # monitoring starts
        for index, model in enumerate(DEMO_MODELS):
            stored[model.model_id], snapshots[model.model_id] = _store_model(
                store, model, actor, seed, end, lambda step, message: report((index * 3 + step) / steps, message))
    analysed = dict.fromkeys(snapshots, 0)
    for index, day_end in enumerate(day_ends):
        report((len(DEMO_MODELS) * 3 + index) / steps, f"analysing {day_end - timedelta(days=1):%Y-%m-%d}")
        for model_id in snapshots:
            analysed[model_id] += _analyse_day(store, model_id, day_end, actor)
        _engineer_responds(store, day_end + DAILY_SLOT)
    if day_ends:
        _history_not_notified(store, before=_replay_time(store, day_ends[-1] + DAILY_SLOT))
    report(1.0, "demo ready")
    return DemoReport(stored, snapshots, analysed)


def _store_model(store, model, actor, seed: int, end: datetime, report) -> tuple[int, str]:
    report(0, f"{model.model_id}: registering")
    config = MonitoringConfig(risk_level=model.risk_level, positive_label=model.positive_label,
                              protected_attributes=list(model.protected_attributes))
    store.models.upsert(RegisteredModel(model_id=model.model_id, display_name=model.display_name,
                                        description=model.description, owner=model.owner, monitoring=config))
    audit.record(store, AuditEvent.MODEL_REGISTERED, actor, target={"model_id": model.model_id},
                 details={"risk_level": model.risk_level, "source": "demo"})
    report(1, f"{model.model_id}: building the baseline")
    reference = generate_reference(model, seed=seed, end=end)
    snapshot = baselines.create_baseline(
        store, reference, model_id=model.model_id, model_version=model.model_version, config=config,
        actor=actor, activate=True, dataset_version=f"demo validation set (seed {seed})")
    report(2, f"{model.model_id}: storing predictions")
    predictions = generate_predictions(model, end=end, seed=seed)
    inserted, _ = store_rows(store, predictions, np.arange(1, len(predictions) + 1))
    audit.record(store, AuditEvent.DEMO_SEEDED, actor, target={"model_id": model.model_id},
                 details={"predictions": inserted, "seed": seed, "end": end.isoformat()})
    return inserted, snapshot.snapshot_id


def _history(end: datetime, days: int) -> list[datetime]:
    """The ends of the last ``days`` whole UTC days before ``end``, oldest first."""
    last_midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return [last_midnight - timedelta(days=back) for back in range(days - 1, -1, -1)]


def _replay_time(store, at: datetime) -> datetime:
    """``at``, but neither before the newest audit entry (a second seeding of a store in use
    keeps the log in time order) nor in the future."""
    newest = store.audit.last()
    return min(max(at, newest.timestamp) if newest else at, clock.now())


def _analyse_day(store, model_id: str, day_end: datetime, actor) -> int:
    """The day before ``day_end`` analysed at its daily slot, unless it already was: 1 or 0."""
    window = analysis.Window(day_end - timedelta(days=1), day_end)
    if any(r.analysis_period.end == day_end for r in store.records.history(model_id, window.start, window.end
                                                                           + timedelta(seconds=1))):
        return 0
    with clock.replaying(_replay_time(store, day_end + DAILY_SLOT)):
        analysis.run_analysis(store, model_id, window, trigger="scheduled", actor=actor)
    return 1


DEMO_ENGINEER = Actor(user_id="engineer", role="ml_engineer")


def _engineer_responds(store, slot: datetime) -> None:
    """The demo's first incident is acknowledged and worked by the on-call engineer within
    the SLA; the rest, the fairness breach among them, wait for someone (SLA breached), as
    in a week where the team was busy: the timeline shows both."""
    incidents = store.incidents.list()
    if len(incidents) != 1 or incidents[0].status != IncidentStatus.OPEN or slot > clock.now():
        return
    slot = _replay_time(store, slot)
    first = incidents[0].incident_id
    with clock.replaying(slot + timedelta(minutes=9)):
        incident_rules.acknowledge(store, first, actor=DEMO_ENGINEER, notes="paged by Slack; looking at it")
    with clock.replaying(slot + timedelta(minutes=41)):
        incident_rules.add_action(store, first, "compared purpose categories with the baseline", actor=DEMO_ENGINEER,
                                  notes="a new loan purpose appears in production that the validation set never had; "
                                        "asked the product team whether it is intended")


def _history_not_notified(store, before: datetime) -> None:
    """Cancel the notifications of the replayed days (queued before the newest day's run):
    nobody is paged for a month of history at once."""
    for delivery in store.deliveries.due(clock.now()):
        if delivery.created_at < before:
            store.deliveries.update(delivery.delivery_id, {"status": DeliveryStatus.CANCELLED,
                                                           "final_error": "demo history: not sent"})


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
