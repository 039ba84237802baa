"""Types shared by every collection: severities, UTC timestamps, ids, the acting user."""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidInput


class Severity(enum.StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def worst(cls, severities: Any) -> Severity:
        """Highest severity in an iterable (INFO when it is empty)."""
        return max(severities, key=lambda s: _SEVERITY_RANK[cls(s)], default=cls.INFO)


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def to_utc_ms(value: datetime) -> datetime:
    """Timezone-aware UTC, truncated to milliseconds.

    Naive datetimes are taken as UTC. Milliseconds because that is what MongoDB stores:
    a document must read back equal on both backends.
    """
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


UtcDatetime = Annotated[datetime, AfterValidator(to_utc_ms)]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since 1970-01-01 UTC (exact: no float on the way); a naive
    datetime is refused, since its meaning depends on the machine's zone."""
    if moment.tzinfo is None:
        raise InvalidInput(f"datetime {moment} has no timezone; use UTC")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def new_id(prefix: str) -> str:
    """A readable unique id such as ``INC-3f9c1a2b7d4e``."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def finite_or_none(value: float | None) -> float | None:
    """NaN becomes None (missing); infinities are refused."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        raise ValueError("must be a finite number, got infinity")
    return value


class Part(BaseModel):
    """Base of a document's nested parts: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Document(BaseModel):
    """Base of every stored document: unknown fields are refused, names are checked."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    def to_doc(self) -> dict[str, Any]:
        """Plain dict for storage (datetimes stay datetimes, enums become strings)."""
        return self.model_dump(mode="python", by_alias=True, exclude_none=False)


class Actor(BaseModel):
    """Who performs a state change. The scheduler and other automation use :data:`SYSTEM`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1)
    role: str = "viewer"
    user_email: str | None = None
    system: bool = False


SYSTEM = Actor(user_id="system", role="admin", system=True)

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], doc: Mapping[str, Any] | ModelT) -> ModelT:
    """``doc`` as a ``model``; a bad document raises ``InvalidInput`` naming the fields."""
    if isinstance(doc, model):
        return doc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_error(model.__name__, exc)) from None


def describe_validation_error(what: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()
    )
    return f"invalid {what}: {problems}"
