"""What a backend must do for the document collections: a small driver interface.

The repositories (:mod:`.repositories`) are written once over this interface; a backend
(:mod:`.sqlite`, :mod:`.mongo`) only says how to talk to its database. A collection is
*declared* (:class:`Collection`): its pydantic model, its id field, the fields that queries
use (:class:`Field`: SQLite copies them into columns, MongoDB reads them in the document)
and its indexes (:class:`Index`: both backends create them from the same declaration, and
:meth:`monitoring_core.storage.base.Store.schema_problems` checks them against what the
database holds).

A driver offers six operations on a declared collection:

- ``insert(c, doc)``: store a new document at revision 1, or raise :class:`DuplicateKey`;
- ``load(c, id)``: the stored :class:`Row` (payload and revision) or None;
- ``replace(c, doc, rev)``: overwrite if the stored revision is still ``rev``; False if not;
- ``query(c, Query)``: rows matching a typed filter (:class:`Cond`: equality, ``in``,
  ranges, list membership), sorted, limited;
- ``delete(c, conds)``: remove matching documents, return how many;
- ``atomic()``: a unit of work (one SQLite transaction; on MongoDB each write is atomic
  on its own).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError

from ..errors import Conflict, StoreDamaged

FieldKind = Literal["text", "time", "bool", "int", "tags"]
Op = Literal["==", "!=", "in", ">=", ">", "<", "<=", "has"]
ASC, DESC = 1, -1


@dataclass(frozen=True)
class Field:
    """A document path that queries or indexes use, and what kind of value it holds.

    ``tags`` is a list of text (for example the metric names of an incident's triggered
    metrics), queried with the ``has`` operator.
    """

    path: str
    kind: FieldKind = "text"


@dataclass(frozen=True)
class Index:
    """An index, declared once for both backends.

    ``where`` makes it partial (only documents matching every condition; ``==`` and ``>``
    only, what both backends accept). ``ttl`` names the retention period
    (:meth:`RetentionPolicy.seconds`) after which MongoDB expires documents by the single
    key; the embedded store applies the same rule in ``purge_expired``.
    """

    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    where: tuple[Cond, ...] = ()
    ttl: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Collection:
    """Everything a driver needs to store one document type."""

    name: str
    model: type[BaseModel]
    id_field: str
    fields: tuple[Field, ...] = ()
    indexes: tuple[Index, ...] = ()
    id_kind: FieldKind = "text"
    #: Entries are never changed once written (the embedded store adds a trigger).
    append_only: bool = False

    def field(self, path: str) -> Field:
        if path == self.id_field:
            return Field(path, self.id_kind)
        for declared in self.fields:
            if declared.path == path:
                return declared
        raise KeyError(f"{self.name} does not declare the field {path!r}")

    @property
    def ttl_index(self) -> Index | None:
        return next((index for index in self.indexes if index.ttl), None)


@dataclass(frozen=True)
class Cond:
    """One condition of a query: ``path op value`` (``in`` takes a sequence)."""

    path: str
    op: Op
    value: Any


@dataclass(frozen=True)
class Query:
    where: tuple[Cond, ...] = ()
    #: Sort keys; the id is always the last tie-breaker so results have one order.
    order: tuple[tuple[str, int], ...] = ()
    limit: int | None = None


@dataclass(frozen=True)
class Row:
    """A stored document before parsing: its id, revision, payload (JSON text or a BSON
    document) and the values of the collection's declared fields."""

    id: Any
    rev: int
    payload: Any
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexInfo:
    """An index as the database holds it, in a form both backends share: keys with their
    direction, uniqueness, the partial filter in the backend's own terms, TTL seconds."""

    keys: tuple[tuple[str, int], ...]
    unique: bool
    partial: Any
    ttl_seconds: int | None


class DuplicateKey(Conflict):
    """An insert or replace clashed with a unique index: the id (``on_id``) or another."""

    def __init__(self, collection: str, on_id: bool):
        self.collection, self.on_id = collection, on_id
        super().__init__(f"{collection}: duplicate {'id' if on_id else 'key of a unique index'}")


def parse(collection: Collection, row: Row) -> Any:
    """The row's document; a payload that is not a valid document raises ``StoreDamaged``."""
    try:
        if isinstance(row.payload, (str, bytes)):
            return collection.model.model_validate_json(row.payload)
        return collection.model.model_validate(row.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise StoreDamaged(f"{collection.name} {collection.id_field}={row.id!r} is damaged and cannot be read "
                           f"({where}: {first['msg']}); other documents are unaffected") from None


def value_at(doc: Any, path: str) -> Any:
    """The value at a dotted path of a pydantic document or a dict (lists are mapped)."""
    value = doc
    for part in path.split("."):
        if isinstance(value, list):
            return [value_at(item, part) for item in value]
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if value is None:
            return None
    return value


class Driver(abc.ABC):
    """How one backend stores declared collections (see the module docstring)."""

    #: Whether the database expires documents itself (MongoDB's TTL indexes).
    expires_documents: ClassVar[bool] = False

    @abc.abstractmethod
    def ensure_collection(self, c: Collection) -> None:
        """Create the collection and its indexes if missing; repair an index that differs."""

    @abc.abstractmethod
    def indexes(self, c: Collection) -> list[IndexInfo]:
        """The explicit indexes the database holds for ``c`` (automatic ones left out)."""

    @abc.abstractmethod
    def expected(self, c: Collection, index: Index) -> IndexInfo:
        """What :meth:`indexes` reads back once ``index`` exists."""

    @abc.abstractmethod
    def insert(self, c: Collection, doc: BaseModel) -> None: ...

    @abc.abstractmethod
    def load(self, c: Collection, doc_id: Any) -> Row | None: ...

    @abc.abstractmethod
    def replace(self, c: Collection, doc: BaseModel, rev: int) -> bool: ...

    @abc.abstractmethod
    def query(self, c: Collection, query: Query) -> list[Row]: ...

    @abc.abstractmethod
    def delete(self, c: Collection, where: Sequence[Cond]) -> int: ...

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        yield

    @abc.abstractmethod
    def close(self) -> None: ...
