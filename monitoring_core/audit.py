"""The hash-chained audit log.

Every state change appends an entry whose ``hash`` is SHA-256 over its canonical JSON
(every field but ``hash``, including ``seq`` and ``prev_hash``). Editing an entry changes
its hash; removing or inserting one breaks the ``seq``/``prev_hash`` links. Retention
removes the oldest entries after five years; verification then starts from the oldest
entry kept, whose ``prev_hash`` is taken as the anchor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .models.audit import AuditActor, AuditEntry, AuditEvent, AuditTarget
from .models.common import Actor
from .storage.repositories import ChainTip, DamagedEntry

GENESIS_HASH = "0" * 64


def canonical_bytes(entry: AuditEntry) -> bytes:
    data = entry.model_dump(mode="json", exclude={"hash"})
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical_bytes(entry)).hexdigest()


def seal(entry: AuditEntry, last: ChainTip | None) -> AuditEntry:
    """``entry`` linked after the ``last`` stored one: its seq, prev_hash and hash set."""
    linked = entry.model_copy(update={
        "seq": 1 if last is None else last.seq + 1,
        "prev_hash": GENESIS_HASH if last is None else last.hash,
        "hash": None,
    })
    return linked.model_copy(update={"hash": entry_hash(linked)})


def _plain_json(details: dict[str, Any]) -> dict[str, Any]:
    # Both backends must read back exactly what was hashed: plain JSON types only.
    return json.loads(json.dumps(details, default=str, allow_nan=False))


def record(store, event: AuditEvent, actor: Actor, *, target: dict[str, str | None] | None = None,
           details: dict[str, Any] | None = None, ip_address: str | None = None,
           user_agent: str | None = None) -> AuditEntry:
    """Append one entry for a state change made by ``actor``."""
    entry = AuditEntry(
        event_type=event,
        actor=AuditActor(user_id=actor.user_id, user_email=actor.user_email, system=actor.system, role=actor.role),
        target=AuditTarget(**(target or {})),
        details=_plain_json(details or {}),
        ip_address=ip_address,
        user_agent=user_agent,
    )
    return store.audit.append(entry, seal)


@dataclass
class ChainReport:
    valid: bool
    total_entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    #: Entries whose stored document cannot be read back, by seq.
    damaged: list[int] = field(default_factory=list)


def verify(store) -> ChainReport:
    """Walk the chain in ``seq`` order and report every broken link, altered entry and
    entry that can no longer be read (damaged), without stopping at the first."""
    report = ChainReport(valid=True)
    previous: AuditEntry | DamagedEntry | None = None
    for entry in store.audit.iter_chain():
        report.total_entries += 1
        report.first_seq = report.first_seq or entry.seq
        report.last_seq = entry.seq
        if isinstance(entry, DamagedEntry):
            report.damaged.append(entry.seq)
            report.problems.append(f"entry {entry.seq}: damaged, its content cannot be checked ({entry.reason})")
        elif entry.hash != entry_hash(entry):
            report.problems.append(f"entry {entry.seq}: content does not match its hash (altered)")
        if previous is not None:
            if entry.seq != previous.seq + 1:
                report.problems.append(f"entries {previous.seq + 1}..{entry.seq - 1} are missing")
            if isinstance(entry, AuditEntry) and entry.prev_hash != previous.hash:
                report.problems.append(f"entry {entry.seq}: prev_hash does not match entry {previous.seq}")
        elif isinstance(entry, AuditEntry) and entry.seq == 1 and entry.prev_hash != GENESIS_HASH:
            report.problems.append("entry 1: does not start from the genesis hash")
        previous = entry
    report.valid = not report.problems
    return report
