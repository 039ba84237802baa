"""Plumbing shared by the embedded store's modules: datetimes as integer milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from ..models.common import epoch_ms as to_ms  # noqa: F401 (the embedded store's name for it)


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)
