"""Idempotent POSTs: the first answer under an ``Idempotency-Key`` is kept and replayed for retries.

A key is scoped to its client (the credential, or the address for anonymous calls); reusing a key for
a different request is a conflict, as is a retry while the first request is still being answered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.clock import now
from app.errors import Conflict
from app.storage.engine import write_transaction
from app.storage.tables import IdempotencyRecord

RETENTION = dt.timedelta(hours=24)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    content_type: str
    body: bytes


async def begin(key_hash: str, fingerprint: str) -> StoredAnswer | None:
    """Claim the key for this request, or return the answer already given under it."""
    async with write_transaction():
        await IdempotencyRecord.delete().where(IdempotencyRecord.created_at < now() - RETENTION)
        row = await IdempotencyRecord.select().where(IdempotencyRecord.key_hash == key_hash).first()
        if row is None:
            await IdempotencyRecord.insert(IdempotencyRecord(key_hash=key_hash, fingerprint=fingerprint))
            return None
    if row["fingerprint"] != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    if row["status"] is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                       retry_after=1)
    return StoredAnswer(row["status"], row["content_type"], bytes(row["body"] or b""))


async def finish(key_hash: str, answer: StoredAnswer) -> None:
    async with write_transaction():
        await IdempotencyRecord.update({
            IdempotencyRecord.status: answer.status,
            IdempotencyRecord.content_type: answer.content_type[:100],
            IdempotencyRecord.body: answer.body,
        }).where(IdempotencyRecord.key_hash == key_hash)


async def abandon(key_hash: str) -> None:
    """The request failed on our side: let the client retry with the same key."""
    async with write_transaction():
        await IdempotencyRecord.delete().where(IdempotencyRecord.key_hash == key_hash)
