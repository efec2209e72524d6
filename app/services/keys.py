"""Key-encryption key rotation: every sealed secret is re-wrapped under the active KEK.

What the KEK wraps: each owner's data key, carriers' webhook secrets (current and previous), streams'
push authorization and webhook secrets, SET signing keys, and each evidence file's key. After
:func:`rewrap` nothing refers to an older KEK id, so that key can be removed from ``HEIRLINE_KEK``;
a database backup taken earlier then no longer opens (this is also what makes an owner's deletion
reach into old backups: their wrapped data key in the backup needs the retired KEK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from app import audit
from app.crypto.envelope import WrappedKey, seal, unseal
from app.settings import KeyRing
from app.storage.engine import write_transaction
from app.storage.tables import Carrier, Evidence, Owner, SigningKey, Stream

BATCH = 500


@dataclass(frozen=True)
class Sealed:
    table: type
    blob: str
    kid: str
    context: Callable[[dict], str]


SEALED = (
    Sealed(Owner, "data_key", "kek_id", lambda r: f"data-key:{r['id']}"),
    Sealed(Carrier, "webhook_secret_ct", "webhook_secret_kid", lambda r: f"carrier:{r['id']}:webhook-secret"),
    Sealed(Carrier, "previous_secret_ct", "previous_secret_kid", lambda r: f"carrier:{r['id']}:webhook-secret"),
    Sealed(Stream, "authorization_ct", "authorization_kid", lambda r: f"stream:{r['id']}:authorization"),
    Sealed(Stream, "webhook_secret_ct", "webhook_secret_kid", lambda r: f"stream:{r['id']}:webhook-secret"),
    Sealed(SigningKey, "private_ct", "private_kek_id", lambda r: f"signing-key:{r['kid']}"),
    Sealed(Evidence, "file_key", "kek_id", lambda r: f"evidence:{r['id']}"),
)


async def kids_in_use() -> dict[str, int]:
    """How many sealed secrets each KEK id still wraps."""
    counts: dict[str, int] = {}
    for item in SEALED:
        table = item.table
        for row in await table.select(getattr(table, item.kid)).where(getattr(table, item.blob).is_not_null()):
            counts[row[item.kid]] = counts.get(row[item.kid], 0) + 1
    return counts


async def rewrap(keyring: KeyRing) -> int:
    """Re-wrap every secret not yet under the active KEK; returns how many moved. Idempotent, batched."""
    moved = 0
    for item in SEALED:
        table = item.table
        columns = [table.id, getattr(table, item.blob), getattr(table, item.kid)]
        if table is SigningKey:
            columns.append(SigningKey.kid)
        while True:
            rows = await table.select(*columns).where(
                getattr(table, item.blob).is_not_null() & (getattr(table, item.kid) != keyring.active)).limit(BATCH)
            if not rows:
                break
            async with write_transaction():
                for row in rows:
                    context = item.context(row)
                    secret = unseal(keyring, context, WrappedKey(row[item.kid], bytes(row[item.blob])))
                    fresh = seal(keyring, context, secret)
                    await table.update({getattr(table, item.blob): fresh.blob,
                                        getattr(table, item.kid): fresh.kek_id}).where(table.id == row["id"])
                moved += len(rows)
    async with write_transaction():
        await audit.record("keys:rotate", actor="operator", detail={"active": keyring.active, "rewrapped": moved})
    return moved
