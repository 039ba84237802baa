"""Baselines as the product manages them: create, activate, archive, reset; each step
permission-checked and audited in the same unit of work.

Policy section 4: one active baseline per model; old ones are archived, never deleted.
The profiling itself (what a baseline holds) is :mod:`monitoring_core.metrics.profile`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from . import audit, auth, clock
from .errors import InvalidInput, NotFound
from .metrics.profile import baseline_from_window, build_baseline
from .models import columns as col
from .models.audit import AuditEvent
from .models.baseline import DriftSnapshot
from .models.common import Actor, Severity
from .models.incidents import Incident, IncidentStatus, ResolutionCategory, ResponseAction, RootCauseCategory
from .models.thresholds import MonitoringConfig

# Policy 4.4: a reset re-baselines on the last seven days of predictions.
RESET_WINDOW = timedelta(days=7)


def _store_new(store, snapshot: DriftSnapshot, actor: Actor, activate: bool, details: dict) -> DriftSnapshot:
    with store.transaction():
        store.baselines.insert(snapshot.model_copy(update={"is_active": False}))
        audit.record(store, AuditEvent.BASELINE_CREATED, actor,
                     target={"model_id": snapshot.model_id, "snapshot_id": snapshot.snapshot_id},
                     details={"source": snapshot.source, "sample_count": snapshot.sample_count, **details})
        if activate:
            return _activate(store, snapshot.snapshot_id, actor)
    return store.baselines.get(snapshot.snapshot_id)


def _activate(store, snapshot_id: str, actor: Actor) -> DriftSnapshot:
    previous = None
    target = store.baselines.get(snapshot_id)
    current = store.baselines.active(target.model_id)
    if current is not None and current.snapshot_id != snapshot_id:
        previous = current.snapshot_id
    activated = store.baselines.activate(snapshot_id, clock.now())
    audit.record(store, AuditEvent.BASELINE_ACTIVATED, actor,
                 target={"model_id": activated.model_id, "snapshot_id": snapshot_id},
                 details={"archived": previous})
    if previous:
        audit.record(store, AuditEvent.BASELINE_ARCHIVED, actor,
                     target={"model_id": activated.model_id, "snapshot_id": previous},
                     details={"replaced_by": snapshot_id})
    return activated


def create_baseline(store, frame: pd.DataFrame, *, model_id: str, model_version: str, config: MonitoringConfig,
                    actor: Actor, activate: bool = True, dataset_version: str | None = None,
                    training_date: datetime | None = None) -> DriftSnapshot:
    """A baseline from a training or validation DataFrame (columns as in
    :mod:`monitoring_core.models.columns`)."""
    auth.require(actor, auth.Permission.MANAGE_BASELINES)
    snapshot = build_baseline(frame, config, model_id=model_id, model_version=model_version,
                              created_by=actor.user_id, dataset_version=dataset_version, training_date=training_date,
                              created_at=clock.now())
    return _store_new(store, snapshot, actor, activate, {"dataset_version": dataset_version})


def create_baseline_from_window(store, *, model_id: str, start: datetime, end: datetime, config: MonitoringConfig,
                                actor: Actor, activate: bool = True, reason: str | None = None) -> DriftSnapshot:
    """A baseline from the model's logged predictions in ``[start, end)``."""
    auth.require(actor, auth.Permission.MANAGE_BASELINES)
    columns = store.predictions.columns(model_id)
    if not columns:
        raise NotFound(f"model {model_id!r} has no predictions")
    window = store.predictions.window(model_id, start, end, columns)
    if window.empty:
        raise InvalidInput(f"no predictions of {model_id!r} between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}")
    versions = window[col.MODEL_VERSION].dropna().unique() if col.MODEL_VERSION in window else []
    snapshot = baseline_from_window(window, config, model_id=model_id,
                                    model_version=str(versions[-1]) if len(versions) else "unknown",
                                    created_by=actor.user_id, period_start=start, period_end=end,
                                    created_at=clock.now())
    return _store_new(store, snapshot, actor, activate, {"reason": reason, "start": start.isoformat(),
                                                         "end": end.isoformat()})


def activate(store, snapshot_id: str, actor: Actor) -> DriftSnapshot:
    """Make an existing (archived) baseline the active one."""
    auth.require(actor, auth.Permission.MANAGE_BASELINES)
    with store.transaction():
        return _activate(store, snapshot_id, actor)


def reset(store, *, model_id: str, actor: Actor, reason: str) -> tuple[DriftSnapshot, Incident]:
    """Policy 4.4: re-baseline on the last seven days of predictions, archive the old one,
    and open an incident documenting the reset and its reason; one unit of work.

    Returns the new active baseline and the incident (resolved: the reset is the response).
    """
    if not reason.strip():
        raise InvalidInput("a baseline reset needs a reason (it is recorded in the audit log and an incident)")
    model = store.models.get(model_id)
    previous = store.baselines.active(model_id)
    end = clock.now()
    with store.transaction():
        snapshot = create_baseline_from_window(store, model_id=model_id, start=end - RESET_WINDOW, end=end,
                                               config=model.monitoring, actor=actor, reason=reason)
        replaced = f"; replaced {previous.snapshot_id}" if previous else ""
        incident = store.incidents.insert(Incident(
            model_id=model_id, severity=Severity.WARNING, status=IncidentStatus.RESOLVED,
            root_cause=reason, root_cause_category=RootCauseCategory.CONCEPT_DRIFT,
            response_actions=[ResponseAction(action=f"baseline reset to {snapshot.snapshot_id}{replaced}",
                                             taken_by=actor.user_id, taken_at=end, notes=reason)],
            resolved_by=actor.user_id, resolved_at=end, resolution_notes=reason,
            resolution_category=ResolutionCategory.BASELINE_UPDATED, created_at=end))
        audit.record(store, AuditEvent.INCIDENT_CREATED, actor,
                     target={"model_id": model_id, "incident_id": incident.incident_id},
                     details={"reason": "baseline reset", "snapshot_id": snapshot.snapshot_id,
                              "replaced": previous.snapshot_id if previous else None})
    return snapshot, incident


def create_baseline_from_file(store, path, *, model_id: str, actor: Actor, model_version: str | None = None,
                              encoding: str | None = None, epoch_unit: str | None = None,
                              activate: bool = True) -> tuple[DriftSnapshot, list]:
    """A baseline from a CSV or Parquet file in the bulk-ingest column format (for example
    the model's validation set with its predictions). Rows that fail ingest validation are
    left out and returned, with their lines; the model must be registered."""
    from .ingest import bulk

    model = store.models.get(model_id)
    frame, lines, read_issues = bulk.read_table(path, encoding)
    rows, _, issues = bulk.validate_frame(frame, lines, model_id=model_id, model_version=model_version,
                                          epoch_unit=epoch_unit)
    if rows.empty:
        raise InvalidInput(f"{path}: no valid rows to build a baseline from ({len(read_issues) + len(issues)} rejected)")
    versions = rows[col.MODEL_VERSION].dropna().unique()
    snapshot = create_baseline(store, rows, model_id=model_id, model_version=str(versions[-1]),
                               config=model.monitoring, actor=actor, activate=activate,
                               dataset_version=str(path))
    return snapshot, read_issues + issues


def compare(store, reference_id: str, candidate_id: str) -> pd.DataFrame:
    """Two stored baselines of one model side by side (see
    :func:`monitoring_core.metrics.comparison.compare_baselines`)."""
    from .metrics.comparison import compare_baselines

    reference, candidate = store.baselines.get(reference_id), store.baselines.get(candidate_id)
    if reference.model_id != candidate.model_id:
        raise InvalidInput(f"{reference_id} is a baseline of {reference.model_id!r} and {candidate_id} of "
                           f"{candidate.model_id!r}: compare baselines of the same model")
    return compare_baselines(reference, candidate)
