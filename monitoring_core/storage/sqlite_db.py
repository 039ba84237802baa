"""Plumbing shared by the embedded store's modules: datetimes as integer milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import InvalidInput


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidInput(f"datetime {moment} has no timezone; use UTC")
    return int(moment.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)
