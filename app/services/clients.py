"""Bearer API tokens of machine clients (carriers, platforms, callers), stored only as hashes."""

from __future__ import annotations

import uuid

from app.crypto.secrets import new_token, token_hash
from app.storage.tables import ClientToken

KINDS = ("carrier", "platform", "caller")


async def issue(kind: str, client_id: uuid.UUID) -> str:
    """A new token for the client; call inside a write transaction."""
    assert kind in KINDS
    token = f"hl_{kind}_{new_token()}"
    await ClientToken.insert(ClientToken(kind=kind, client_id=client_id, token_hash=token_hash(token)))
    return token


async def resolve(token: str | None, kind: str) -> uuid.UUID | None:
    if not token or len(token) > 200 or not token.startswith(f"hl_{kind}_"):
        return None
    row = await ClientToken.select(ClientToken.client_id).where(
        (ClientToken.token_hash == token_hash(token)) & (ClientToken.kind == kind) & ClientToken.revoked_at.is_null()
    ).first()
    return row["client_id"] if row else None
