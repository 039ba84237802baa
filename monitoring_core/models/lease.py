"""Leases: "one at a time" across threads, processes and hosts, with an expiry.

One document per lease key (``analysis:loan-approval``, ``delivery:ALR-...``,
``job:daily-fairness``) says who holds it and until when. A holder that crashes stops
renewing, so its lease expires and the next caller takes over instead of waiting forever.
The rules (acquire, renew, release) are in
:class:`monitoring_core.storage.repositories.Leases`; :mod:`monitoring_core.leases` is
the API the analysis, the alert sender and the scheduler use.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import Document, UtcDatetime


def new_owner() -> str:
    """A token that identifies one holder: only the holder that knows it may renew or
    release the lease."""
    return uuid.uuid4().hex


class LeaseHolder(BaseModel):
    """Who holds a lease, for the message a refused caller reads and for an operator who
    wants to find (or kill) the holder. Host and pid default to this process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    started_by: str = Field(min_length=1, description="user id of whoever started the work, or 'system'")
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid, ge=0)
    note: str | None = Field(default=None, description="what the holder is doing, e.g. 'cli analyze --window 24h'")


class Lease(Document):
    key: str = Field(min_length=1, description="what is held, e.g. 'analysis:loan-approval'")
    owner: str = Field(min_length=1, description="the holder's secret token (see new_owner)")
    holder: LeaseHolder
    acquired_at: UtcDatetime
    renewed_at: UtcDatetime
    expires_at: UtcDatetime

    @model_validator(mode="after")
    def _expires_after_it_starts(self) -> Lease:
        # renewed_at may precede acquired_at by a clock step back on the holder's host.
        if self.expires_at <= max(self.acquired_at, self.renewed_at):
            raise ValueError(f"a lease must expire after it was acquired and renewed, got acquired_at "
                             f"{self.acquired_at}, renewed_at {self.renewed_at}, expires_at {self.expires_at}")
        return self

    def is_held_at(self, moment: datetime) -> bool:
        """Whether the lease is still in force at ``moment`` (it expires at ``expires_at``)."""
        return moment < self.expires_at
