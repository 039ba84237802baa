"""``users``: who may sign in to the app, with which role (policy section 6)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..clock import now
from .common import Document, UtcDatetime

#: The roles of policy section 6 (their permissions are in :mod:`monitoring_core.auth`).
RoleName = Literal["admin", "ml_engineer", "compliance_officer", "auditor", "viewer"]


class User(Document):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    name: str = Field(min_length=1)
    email: str | None = None
    role: RoleName
    #: bcrypt hash; the password itself is never stored.
    password_hash: str = Field(min_length=1)
    disabled: bool = False
    #: Failed sign-ins inside the lockout window (policy 6: five in 15 minutes lock for 15).
    failed_sign_ins: list[UtcDatetime] = Field(default_factory=list)
    locked_until: UtcDatetime | None = None
    last_sign_in: UtcDatetime | None = None
    #: Sign-in cookies issued before this instant no longer resume a session (set by signing
    #: out, disabling the account and changing its password).
    sessions_revoked_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=now)
    updated_at: UtcDatetime | None = None
