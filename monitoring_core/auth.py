"""Roles and permissions (policy section 6), enforced here as well as in the pages.

Every function that changes state takes the acting :class:`~monitoring_core.models.common.Actor`
and calls :func:`require` before touching the store; the pages hide what a role cannot
use, but this module is what refuses it.
"""

from __future__ import annotations

import enum

from .errors import Forbidden
from .models.common import Actor


class Role(enum.StrEnum):
    ADMIN = "admin"
    ML_ENGINEER = "ml_engineer"
    COMPLIANCE_OFFICER = "compliance_officer"
    AUDITOR = "auditor"
    VIEWER = "viewer"


class Permission(enum.StrEnum):
    VIEW_DRIFT = "view_drift"
    VIEW_FAIRNESS = "view_fairness"
    VIEW_MODEL_HEALTH = "view_model_health"
    VIEW_INCIDENTS = "view_incidents"
    VIEW_AUDIT_LOG = "view_audit_log"
    TRIGGER_ANALYSIS = "trigger_analysis"
    MANAGE_INCIDENTS = "manage_incidents"
    MANAGE_BASELINES = "manage_baselines"
    MANAGE_SUPPRESSIONS = "manage_suppressions"
    APPROVE_FAIRNESS_SUPPRESSIONS = "approve_fairness_suppressions"
    INGEST_PREDICTIONS = "ingest_predictions"
    MANAGE_MODELS = "manage_models"
    OPERATE = "operate"  # scheduler, retention, users


_VIEW_ALL = {Permission.VIEW_DRIFT, Permission.VIEW_FAIRNESS, Permission.VIEW_MODEL_HEALTH,
             Permission.VIEW_INCIDENTS}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ML_ENGINEER: frozenset(_VIEW_ALL | {
        Permission.VIEW_AUDIT_LOG, Permission.TRIGGER_ANALYSIS, Permission.MANAGE_INCIDENTS,
        Permission.MANAGE_BASELINES, Permission.MANAGE_SUPPRESSIONS, Permission.INGEST_PREDICTIONS,
        Permission.MANAGE_MODELS}),
    # Policy 6: no Model Health page and no analysis trigger; owns fairness sign-off.
    Role.COMPLIANCE_OFFICER: frozenset({
        Permission.VIEW_DRIFT, Permission.VIEW_FAIRNESS, Permission.VIEW_INCIDENTS, Permission.VIEW_AUDIT_LOG,
        Permission.MANAGE_INCIDENTS, Permission.APPROVE_FAIRNESS_SUPPRESSIONS}),
    # Policy 6: sees everything, changes nothing.
    Role.AUDITOR: frozenset(_VIEW_ALL | {Permission.VIEW_AUDIT_LOG}),
    Role.VIEWER: frozenset({Permission.VIEW_DRIFT}),
}


def role_of(actor: Actor) -> Role:
    try:
        return Role(actor.role)
    except ValueError:
        raise Forbidden(f"{actor.user_id} has an unknown role {actor.role!r}") from None


def can(actor: Actor, permission: Permission) -> bool:
    return permission in PERMISSIONS[role_of(actor)]


def require(actor: Actor, permission: Permission) -> None:
    """Raise :class:`Forbidden` unless the actor's role grants ``permission``."""
    if not can(actor, permission):
        raise Forbidden(f"{actor.user_id} ({actor.role}) may not {permission.value.replace('_', ' ')}")
