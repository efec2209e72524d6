"""The append-only, hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's own canonical JSON, so editing,
deleting or reordering any row breaks the chain from that row on; ``heirline audit verify`` walks it.
Entries are appended inside the caller's write transaction: the change and its record commit
together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from app.storage.engine import DB, in_transaction, insert_rows, serialize_appends, write_transaction
from app.storage.group_commit import GroupCommit
from app.storage.tables import AuditEvent

GENESIS = "0" * 64


def _canonical(seq: int, at: dt.datetime, actor: str, action: str, subject: str,
               owner_id: str | None, detail: str) -> bytes:
    return json.dumps(
        {
            "seq": seq,
            "at": at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "owner_id": owner_id,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def entry_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One audit entry. ``action`` is a tag like ``binding:create``; ``detail`` never holds secrets."""

    action: str
    actor: str
    subject: str = ""
    owner_id: uuid.UUID | str | None = None
    detail: dict[str, Any] | None = None


async def record(action: str, *, actor: str, subject: str = "", owner_id: uuid.UUID | str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    """Append one entry. Call inside ``write_transaction()``."""
    await record_many([Entry(action, actor, subject, owner_id, detail)])


async def record_many(entries: list[Entry]) -> None:
    """Append entries in order, chained, with one insert. Call inside ``write_transaction()``."""
    if not entries:
        return
    await serialize_appends("audit_event")
    rows = await in_transaction("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
    last = rows[0] if rows else None
    seq = last["seq"] if last else 0
    prev = last["hash"] if last else GENESIS
    at = dt.datetime.now(dt.timezone.utc)
    rows = []
    for entry in entries:
        seq += 1
        owner = str(entry.owner_id) if entry.owner_id else None
        detail_text = json.dumps(entry.detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                                 default=str)
        digest = entry_hash(prev, _canonical(seq, at, entry.actor, entry.action, entry.subject, owner, detail_text))
        rows.append(dict(seq=seq, at=at, actor=entry.actor, action=entry.action, subject=entry.subject,
                         owner_id=uuid.UUID(owner) if owner else None, detail=detail_text, prev_hash=prev,
                         hash=digest))
        prev = digest
    await insert_rows(AuditEvent, rows)


async def _append_group(entries: list[Entry]) -> list[None]:
    async with write_transaction():
        await record_many(entries)
    return [None] * len(entries)


# entries recorded on their own: concurrent requests share a transaction (the chain's append lock is
# taken once per group, not once per entry, so a burst of lookups does not queue on it)
_on_their_own = GroupCommit(_append_group, max_group=512)


async def record_on_its_own(action: str, *, actor: str, subject: str = "", owner_id: uuid.UUID | str | None = None,
                            detail: dict[str, Any] | None = None) -> None:
    """Append one entry that goes with no other change, and return once it is committed. Not inside a
    transaction: an entry recording a change belongs in that change's transaction (:func:`record`)."""
    assert DB.current_transaction.get() is None, "inside a transaction, use record()"
    await _on_their_own.submit(Entry(action, actor, subject, owner_id, detail))


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""


async def verify(progress: Callable[[int], None] | None = None, batch: int = 5000) -> VerifyResult:
    """Walk the whole chain in order; report the first entry that does not hold."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    while True:
        rows = await AuditEvent.select().where(AuditEvent.seq >= expected_seq).order_by(
            AuditEvent.seq
        ).limit(batch)
        if not rows:
            return VerifyResult(True, checked)
        for row in rows:
            if row["seq"] != expected_seq:
                return VerifyResult(False, checked, expected_seq, f"entry {expected_seq} is missing")
            if row["prev_hash"] != prev:
                return VerifyResult(False, checked, row["seq"], "link to the previous entry is broken")
            owner = str(row["owner_id"]) if row["owner_id"] else None
            canonical = _canonical(row["seq"], row["at"], row["actor"], row["action"],
                                   row["subject"], owner, row["detail"])
            if entry_hash(prev, canonical) != row["hash"]:
                return VerifyResult(False, checked, row["seq"], "entry was changed after it was written")
            prev = row["hash"]
            expected_seq += 1
            checked += 1
        if progress:
            progress(checked)
