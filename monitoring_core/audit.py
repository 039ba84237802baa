"""The hash-chained audit log (audit file 003, policy 5.1).

Every state change appends an entry in the same unit of work as the change
(``store.transaction()``). The entry's links:

- ``seq`` (1, 2, 3...) and ``prev_hash`` (the previous entry's ``hash``; 64 zeros for the
  first) are both unique in the store, so concurrent appenders cannot fork the chain;
- ``hash`` is SHA-256 over the entry's *canonical JSON*: every field but ``hash`` and
  ``signature``, keys sorted at every level, separators ``,`` and ``:``, UTF-8 without
  escaping, ``null`` for a missing value, times as UTC ISO 8601 with six fractional
  digits and a ``Z`` (``2026-11-23T10:02:00.123000Z``; times are kept to milliseconds);
- ``signature`` is HMAC-SHA256 of ``hash`` with the audit key (``FAIRWATCH_AUDIT_KEY``).

The hash chain shows an edited, removed or moved entry to anyone holding an export; the
signature shows an entry written by someone without the key, however correct its hash.
Removing the *newest* entries leaves a chain that is whole, so a signed checkpoint of the
tip (``audit_checkpoints``, outside the log's collection) is refreshed with every append:
stored entries that stop before it were truncated.

Retention (policy 7, five years) removes a prefix only: :func:`purge_expired` first stores
a signed *anchor*, the seq and hash of the last entry it removes, and verification starts
from the anchor. No other code path updates or deletes entries (on SQLite a trigger
refuses updates). What the checkpoint cannot show is a rollback of the log *and* its
checkpoints to an earlier copy of the database: keep exports, or the output of
``audit verify``, outside it.
"""

from __future__ import annotations

import csv
import enum
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel

from . import clock
from .config import Settings, get_settings
from .errors import InvalidInput, StoreDamaged
from .models.audit import AuditActor, AuditCheckpoint, AuditEntry, AuditEvent, AuditTarget, CheckpointName
from .models.common import Actor
from .storage.driver import value_at
from .storage.repositories import ChainTip, DamagedEntry

GENESIS_HASH = "0" * 64
TIP: CheckpointName = "tip"
ANCHOR: CheckpointName = "anchor"
# Demo mode only (embedded store with FAIRWATCH_SEED_DEMO): anyone can read this key.
DEMO_KEY = b"fairwatch demo audit key - public, for demo mode only"
ExportFormat = Literal["json", "csv"]


@dataclass(frozen=True)
class AuditKey:
    """The key of the audit log's signatures: ``FAIRWATCH_AUDIT_KEY``, or the public demo
    key in demo mode (labelled as such wherever the chain is reported)."""

    secret: bytes = field(repr=False)
    demo: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AuditKey:
        # Settings refuse a missing key outside demo mode, so none here means demo mode.
        key = (settings or get_settings()).audit_key
        return cls(DEMO_KEY, demo=True) if key is None else cls(key.get_secret_value().encode())

    @property
    def label(self) -> str:
        if self.demo:
            return "DEMO key (public; demo mode only: set FAIRWATCH_AUDIT_KEY before production use)"
        return "FAIRWATCH_AUDIT_KEY"

    def sign(self, message: str) -> str:
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()

    def signed(self, message: str, signature: str | None) -> bool:
        return signature is not None and hmac.compare_digest(self.sign(message), signature)


def _canonical_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(data: Any) -> str:
    """The canonical serialisation (see the module docstring)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_canonical_default)


def canonical_bytes(entry: AuditEntry) -> bytes:
    return canonical_json(entry.model_dump(mode="python", exclude={"hash", "signature"})).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical_bytes(entry)).hexdigest()


def _entry_message(entry_hash_: str) -> str:
    return f"entry:{entry_hash_}"


def _checkpoint_message(name: str, seq: int, hash_: str) -> str:
    return canonical_json({"name": name, "seq": seq, "hash": hash_})


def seal(entry: AuditEntry, last: ChainTip | None, key: AuditKey | None = None) -> AuditEntry:
    """``entry`` linked after the ``last`` stored one: its seq, prev_hash, hash and
    signature set."""
    key = key or AuditKey.from_settings()
    linked = entry.model_copy(update={
        "seq": 1 if last is None else last.seq + 1,
        "prev_hash": GENESIS_HASH if last is None else last.hash,
        "hash": None, "signature": None,
    })
    digest = entry_hash(linked)
    return linked.model_copy(update={"hash": digest, "signature": key.sign(_entry_message(digest))})


def checkpoint(name: CheckpointName, link: ChainTip, key: AuditKey) -> AuditCheckpoint:
    """A signed checkpoint of ``link``."""
    return AuditCheckpoint(name=name, seq=link.seq, hash=link.hash, signed_at=clock.now(),
                           signature=key.sign(_checkpoint_message(name, link.seq, link.hash)))


def _plain_json(details: dict[str, Any]) -> dict[str, Any]:
    # Both backends must read back exactly what was hashed: plain JSON types only.
    return json.loads(json.dumps(details, default=str, allow_nan=False))


def record(store, event: AuditEvent, actor: Actor, *, target: dict[str, str | None] | None = None,
           details: dict[str, Any] | None = None, ip_address: str | None = None,
           user_agent: str | None = None, key: AuditKey | None = None) -> AuditEntry:
    """Append one entry for a state change made by ``actor`` and move the signed tip
    checkpoint to it, in one unit of work (call it inside the change's
    ``store.transaction()`` so the change and its entry commit together)."""
    key = key or AuditKey.from_settings()
    entry = AuditEntry(
        event_type=event,
        actor=AuditActor(user_id=actor.user_id, user_email=actor.user_email, system=actor.system, role=actor.role),
        target=AuditTarget(**(target or {})),
        details=_plain_json(details or {}),
        ip_address=ip_address,
        user_agent=user_agent,
    )
    with store.transaction():
        sealed = store.audit.append(entry, functools.partial(seal, key=key))
        store.audit_checkpoints.advance(checkpoint(TIP, ChainTip(sealed.seq, sealed.hash), key))
    return sealed


# -- verification ------------------------------------------------------------------------------


class Damage(enum.StrEnum):
    """What verification found wrong, by the entry (seq) concerned."""

    MODIFIED = "modified"  # content changed after it was written (or re-hashed without the key)
    DELETED = "deleted"  # entries missing from the middle or the start
    INSERTED = "inserted"  # an entry not written with the key, after the signed tip
    REORDERED = "reordered"  # an entry stored where another belongs
    DAMAGED = "damaged"  # the stored document cannot be read back
    TRUNCATED = "truncated"  # the newest entries are gone (caught by the tip checkpoint)
    FORGED_CHECKPOINT = "forged_checkpoint"  # a checkpoint whose signature does not verify
    MISSING_CHECKPOINT = "missing_checkpoint"  # entries but no tip checkpoint


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    kind: Damage
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class ChainReport:
    valid: bool
    total_entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    #: Every problem, ordered by seq.
    problems: list[ChainProblem] = field(default_factory=list)
    #: Entries whose stored document cannot be read back, by seq.
    damaged: list[int] = field(default_factory=list)
    #: The retention anchor verification started after (0: the genesis).
    anchor_seq: int = 0
    #: The signed tip checkpoint, if there is a trustworthy one.
    checkpoint_seq: int | None = None
    key_label: str = ""

    @property
    def first_problem(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None


def _checkpoint(store, name: CheckpointName, key: AuditKey) -> tuple[AuditCheckpoint | None, ChainProblem | None]:
    """The stored checkpoint if its signature verifies, else what is wrong with it; (None,
    None) when there is none."""
    try:
        found = store.audit_checkpoints.find(name)
    except StoreDamaged as exc:
        return None, ChainProblem(0, Damage.FORGED_CHECKPOINT, f"the {name} checkpoint is damaged: {exc}")
    if found is None or key.signed(_checkpoint_message(found.name, found.seq, found.hash), found.signature):
        return found, None
    return None, ChainProblem(found.seq, Damage.FORGED_CHECKPOINT,
                              f"the {name} checkpoint (entry {found.seq}) is not signed with the audit key: forged, "
                              "or written with another key")


def _entry_problem(seq: int, entry: AuditEntry | DamagedEntry, key: AuditKey,
                   signed_tip: int | None) -> ChainProblem | None:
    """What is wrong with one entry on its own, if anything."""
    if isinstance(entry, DamagedEntry):
        return ChainProblem(seq, Damage.DAMAGED, f"entry {seq}: damaged, its content cannot be checked "
                                                 f"({entry.reason})")
    if entry.seq != seq:
        return ChainProblem(seq, Damage.REORDERED, f"entry {seq}: holds entry {entry.seq}, which belongs elsewhere "
                                                   "(reordered)")
    if entry.hash != entry_hash(entry):
        return ChainProblem(seq, Damage.MODIFIED, f"entry {seq}: content does not match its hash (modified)")
    if not key.signed(_entry_message(entry.hash), entry.signature):
        if signed_tip is not None and seq <= signed_tip:
            return ChainProblem(seq, Damage.MODIFIED, f"entry {seq}: rewritten and re-hashed without the audit key "
                                                      "(modified; its signature does not verify)")
        return ChainProblem(seq, Damage.INSERTED, f"entry {seq}: not written by Fairwatch, its signature does not "
                                                  "verify with the audit key (inserted)")
    return None


def verify_chain(store, key: AuditKey | None = None) -> ChainReport:
    """Check the whole audit log and report every problem by entry (seq) and kind.

    Walks the entries in ``seq`` order from the retention anchor, checking each entry's
    place, hash, signature and link to the one before, then compares the last entry with
    the signed tip checkpoint. Does not stop at the first problem.

    Returns
    -------
    ChainReport
        ``valid`` when nothing is wrong; ``problems`` ordered by seq, each with its
        :class:`Damage` kind.
    """
    key = key or AuditKey.from_settings()
    # Checkpoints first: the tip only moves on after its entry is stored, so one read
    # before the walk never lies beyond what the walk finds, unless entries were removed.
    anchor, anchor_problem = _checkpoint(store, ANCHOR, key)
    tip, tip_problem = _checkpoint(store, TIP, key)
    problems = [p for p in (anchor_problem, tip_problem) if p is not None]
    report = ChainReport(valid=True, anchor_seq=anchor.seq if anchor else 0,
                         checkpoint_seq=tip.seq if tip else None, key_label=key.label)
    expected_seq, expected_prev = report.anchor_seq + 1, anchor.hash if anchor else GENESIS_HASH
    previous_flagged, hash_at_tip = False, None
    for seq, entry in store.audit.iter_chain():
        if seq < expected_seq:
            continue  # already anchored by retention, about to be removed
        report.total_entries += 1
        report.first_seq = report.first_seq or seq
        if seq > expected_seq:
            problems.append(ChainProblem(expected_seq, Damage.DELETED, _missing(expected_seq, seq - 1, "deleted")))
        problem = _entry_problem(seq, entry, key, tip.seq if tip else None)
        if problem is not None:
            problems.append(problem)
        elif seq == expected_seq and not previous_flagged and entry.prev_hash != expected_prev:
            problems.append(ChainProblem(seq, Damage.MODIFIED, f"entry {seq}: prev_hash does not match entry "
                                                               f"{seq - 1} (the link was modified)"))
        if tip is not None and seq == tip.seq:
            hash_at_tip = entry.hash
        previous_flagged = problem is not None
        expected_seq, expected_prev = seq + 1, entry.hash
    last_seq = expected_seq - 1
    report.last_seq = last_seq if report.total_entries else None
    if tip is not None:
        problems += _against_tip(tip, last_seq, hash_at_tip, {p.seq for p in problems})
    elif tip_problem is None and report.total_entries:
        problems.append(ChainProblem(last_seq, Damage.MISSING_CHECKPOINT,
                                     f"no tip checkpoint although entries reach {last_seq}: truncation of the "
                                     "tail cannot be ruled out (missing checkpoint)"))
    report.damaged = [p.seq for p in problems if p.kind == Damage.DAMAGED]
    report.problems = sorted(problems, key=lambda p: p.seq)
    report.valid = not problems
    return report


def _missing(first: int, last: int, how: str) -> str:
    return f"entry {first}: missing ({how})" if first == last else f"entries {first}..{last}: missing ({how})"


def _against_tip(tip: AuditCheckpoint, last_seq: int, hash_at_tip: str | None,
                 flagged: set[int]) -> list[ChainProblem]:
    """Truncation and rewriting, judged by the signed tip checkpoint."""
    if tip.seq > last_seq:
        return [ChainProblem(last_seq + 1, Damage.TRUNCATED, _missing(
            last_seq + 1, tip.seq, f"truncated: the signed checkpoint is at entry {tip.seq}"))]
    if hash_at_tip is not None and hash_at_tip != tip.hash and tip.seq not in flagged:
        return [ChainProblem(tip.seq, Damage.MODIFIED, f"entry {tip.seq}: does not match the signed checkpoint "
                                                       "(the chain was rewritten up to here; modified)")]
    return []


#: The name earlier releases used.
verify = verify_chain


# -- retention ---------------------------------------------------------------------------------


def purge_expired(store, now: datetime, actor: Actor, key: AuditKey | None = None) -> dict[str, int]:
    """Apply the retention policy to every collection, the audit log included, and audit
    it, in one unit of work.

    The audit log loses only a prefix: the entries before the first one still within
    retention. The seq and hash of the last entry removed are stored first as the signed
    ``anchor`` checkpoint, from which :func:`verify_chain` starts.

    Returns
    -------
    dict
        Documents removed, per collection.
    """
    key = key or AuditKey.from_settings()
    cutoff = store.retention.cutoffs(now)[store.audit.collection.name]
    with store.transaction():
        removed = dict(store.purge_expired(now).removed)
        removed[store.audit.collection.name] = _purge_audit_before(store, cutoff, key)
        record(store, AuditEvent.RETENTION_PURGE, actor, details=removed, key=key)
    return removed


def _purge_audit_before(store, cutoff: datetime, key: AuditKey) -> int:
    tip = store.audit.tip()
    if tip is None:
        return 0
    # The newest entry always stays, so the next append links to it.
    first_kept = min(store.audit.first_since(cutoff) or tip.seq, tip.seq)
    link = store.audit.link_at(first_kept - 1)
    if link is None:
        return 0  # nothing old enough, or already purged
    store.audit_checkpoints.advance(checkpoint(ANCHOR, link, key))
    return store.audit.delete_through(link.seq)


# -- export ------------------------------------------------------------------------------------


def _csv_columns() -> list[str]:
    columns = []
    for name, info in AuditEntry.model_fields.items():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            columns += [f"{name}.{sub}" for sub in nested.model_fields]
        else:
            columns.append(name)
    return columns


CSV_COLUMNS = _csv_columns()


@dataclass(frozen=True)
class ExportReport:
    entries: int
    #: Entries left out because their stored document cannot be read back.
    damaged: list[int]


def export(store, out: TextIO, fmt: ExportFormat, *, actor: Actor, since: datetime | None = None,
           key: AuditKey | None = None) -> ExportReport:
    """Write the entries with ``timestamp >= since`` (all by default) in ``seq`` order to
    ``out`` and record the export as ``audit_exported``.

    ``json`` is one array of entry documents; ``csv`` has one column per field (nested
    fields as ``actor.user_id``...; ``details`` as JSON; an empty cell is null). Both keep
    ``seq``, ``prev_hash``, ``hash`` and ``signature``, so the hashes can be checked on the
    export alone (:func:`read_export`, :func:`entry_hash`).
    """
    if fmt not in ("json", "csv"):
        raise InvalidInput(f"unknown export format {fmt!r}: use json or csv")
    damaged: list[int] = []
    entries = _skip_damaged(store.audit.iter_chain(since), damaged)
    written = _write_json(out, entries) if fmt == "json" else _write_csv(out, entries)
    details = {"format": fmt, "since": since.isoformat() if since else None, "entries": written,
               "damaged_not_exported": damaged}
    record(store, AuditEvent.AUDIT_EXPORTED, actor, details=details, key=key)
    return ExportReport(written, damaged)


def _skip_damaged(chain: Iterable[tuple[int, AuditEntry | DamagedEntry]], damaged: list[int]) -> Iterator[AuditEntry]:
    """The readable entries; the seqs of the others are added to ``damaged``."""
    for seq, entry in chain:
        if isinstance(entry, DamagedEntry):
            damaged.append(seq)
        else:
            yield entry


def _write_json(out: TextIO, entries: Iterable[AuditEntry]) -> int:
    count = 0
    out.write("[")
    for entry in entries:
        out.write(("," if count else "") + "\n" + canonical_json(entry.model_dump(mode="python")))
        count += 1
    out.write("\n]\n")
    return count


def _write_csv(out: TextIO, entries: Iterable[AuditEntry]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        doc = json.loads(canonical_json(entry.model_dump(mode="python")))
        writer.writerow([_csv_cell(value_at(doc, column) if column != "details" else doc["details"])
                         for column in CSV_COLUMNS])
        count += 1
    return count


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return canonical_json(value)
    return str(value)


def read_export(text: str, fmt: ExportFormat) -> list[AuditEntry]:
    """The entries of an export written by :func:`export` (for checking it elsewhere)."""
    if fmt == "json":
        documents = json.loads(text)
    else:
        documents = [_nested(row) for row in csv.DictReader(text.splitlines())]
    return [AuditEntry.model_validate(doc) for doc in documents]


def _nested(row: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for column, cell in row.items():
        value = None if cell == "" else json.loads(cell) if column == "details" else cell
        parent, _, name = column.rpartition(".")
        (doc.setdefault(parent, {}) if parent else doc)[name] = value
    return doc
