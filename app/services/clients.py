"""Bearer API tokens of machine clients (carriers, platforms, callers), stored only as hashes."""

from __future__ import annotations

import time
import uuid

from app.crypto.secrets import new_token, token_hash
from app.storage.engine import read_rows
from app.storage.tables import ClientToken

KINDS = ("carrier", "platform", "caller")
CACHE_SECONDS = 5.0  # a revoked token stops working within this long
_resolved: dict[str, tuple[uuid.UUID | None, float]] = {}  # token -> (client, valid until)


async def issue(kind: str, client_id: uuid.UUID) -> str:
    """A new token for the client; call inside a write transaction."""
    assert kind in KINDS
    token = f"hl_{kind}_{new_token()}"
    await ClientToken.insert(ClientToken(kind=kind, client_id=client_id, token_hash=token_hash(token)))
    return token


async def resolve(token: str | None, kind: str) -> uuid.UUID | None:
    if not token or len(token) > 200 or not token.startswith(f"hl_{kind}_"):
        return None
    cached = _resolved.get(token)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    digest = token_hash(token)
    rows = await read_rows("SELECT client_id FROM client_token WHERE token_hash = {} AND kind = {}"
                           " AND revoked_at IS NULL", digest, kind)
    client_id = uuid.UUID(str(rows[0]["client_id"])) if rows else None
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[token] = (client_id, time.monotonic() + CACHE_SECONDS)
    return client_id
