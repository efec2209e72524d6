"""Carriers as clients: credentials, secret rotation, and Standard Webhooks verification."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import secrets
import time
import uuid
from dataclasses import dataclass

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app import audit
from app.clock import now
from app.crypto.envelope import WrappedKey, seal, unseal
from app.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from app.services import clients
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import Carrier

JURISDICTIONS = ("CN", "US")


@dataclass(frozen=True)
class CarrierCredentials:
    id: uuid.UUID
    webhook_secret: str
    api_token: str


def _new_secret() -> tuple[str, bytes]:
    raw = secrets.token_bytes(32)
    return "whsec_" + base64.b64encode(raw).decode(), raw


def _context(carrier_id: uuid.UUID) -> str:
    return f"carrier:{carrier_id}:webhook-secret"


async def add(name: str, jurisdiction: str, data_since: dt.date | None = None) -> CarrierCredentials:
    """A carrier client; ``data_since`` is the first day its reports cover (recycling checks answer
    `no_data` before it), by default the day it joins."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest("a carrier name of 1 to 100 characters is required", field="name")
    jurisdiction = jurisdiction.upper()
    if jurisdiction not in JURISDICTIONS:
        raise InvalidRequest(f"jurisdiction must be one of {', '.join(JURISDICTIONS)}", field="jurisdiction")
    carrier_id = uuid.uuid4()
    text, raw = _new_secret()
    sealed = seal(get_settings().keyring, _context(carrier_id), raw)
    async with write_transaction():
        if await Carrier.exists().where(Carrier.name == name):
            raise Conflict(f"a carrier named {name!r} already exists")
        since = data_since or now().date()
        await Carrier.insert(Carrier(id=carrier_id, name=name, jurisdiction=jurisdiction,
                                     webhook_secret_ct=sealed.blob, webhook_secret_kid=sealed.kek_id,
                                     data_since=dt.datetime.combine(since, dt.time(), dt.timezone.utc)))
        token = await clients.issue("carrier", carrier_id)
        await audit.record("carrier:add", actor="operator", subject=f"carrier:{carrier_id}",
                           detail={"name": name, "jurisdiction": jurisdiction})
    return CarrierCredentials(carrier_id, text, token)


async def rotate_secret(carrier_id: uuid.UUID, grace: dt.timedelta) -> str:
    """A new webhook secret; the old one stays valid for ``grace`` so in-flight retries still verify."""
    text, raw = _new_secret()
    sealed = seal(get_settings().keyring, _context(carrier_id), raw)
    async with write_transaction():
        row = await Carrier.select(Carrier.webhook_secret_ct, Carrier.webhook_secret_kid).where(
            Carrier.id == carrier_id).first()
        if row is None:
            raise NotFound("no such carrier")
        await Carrier.update({
            Carrier.previous_secret_ct: row["webhook_secret_ct"], Carrier.previous_secret_kid: row["webhook_secret_kid"],
            Carrier.previous_valid_until: now() + grace,
            Carrier.webhook_secret_ct: sealed.blob, Carrier.webhook_secret_kid: sealed.kek_id,
        }).where(Carrier.id == carrier_id)
        forget(carrier_id)
        await audit.record("carrier:secret:rotate", actor="operator", subject=f"carrier:{carrier_id}",
                           detail={"grace_seconds": int(grace.total_seconds())})
    return text


async def get(carrier_id: object) -> dict:
    try:
        cid = uuid.UUID(str(carrier_id))
    except ValueError:
        raise NotFound("no such carrier") from None
    row = await Carrier.select().where(Carrier.id == cid).first()
    if row is None:
        raise NotFound("no such carrier")
    return row


# carrier id -> (carrier row, webhook secrets, valid until): a burst of events opens the secrets once
_verifiers: dict[str, tuple[dict, list[bytes], float]] = {}
# carrier id -> the one load in progress: when the entry lapses under load, the requests waiting for it
# share one read instead of each opening a database connection at the same moment
_loading: dict[str, asyncio.Future] = {}
CACHE_SECONDS = 5.0


async def _verifier(carrier_id: object) -> tuple[dict, list[bytes]]:
    key = str(carrier_id)
    cached = _verifiers.get(key)
    if cached and cached[2] > time.monotonic():
        return cached[0], cached[1]
    loading = _loading.get(key)
    if loading is None:
        loading = _loading[key] = asyncio.ensure_future(_load_verifier(key))
        loading.add_done_callback(lambda done: _loading.pop(key, None) if _loading.get(key) is done else None)
    carrier, secrets_, _ = await asyncio.shield(loading)
    return carrier, secrets_


async def _load_verifier(key: str) -> tuple[dict, list[bytes], float]:
    carrier = await get(key)
    keyring = get_settings().keyring
    candidates = [WrappedKey(carrier["webhook_secret_kid"], bytes(carrier["webhook_secret_ct"]))]
    valid_for = CACHE_SECONDS
    if carrier["previous_secret_ct"] is not None and carrier["previous_valid_until"] and \
            carrier["previous_valid_until"] > now():
        candidates.append(WrappedKey(carrier["previous_secret_kid"], bytes(carrier["previous_secret_ct"])))
        valid_for = min(valid_for, (carrier["previous_valid_until"] - now()).total_seconds())
    loaded = (carrier, [unseal(keyring, _context(carrier["id"]), wrapped) for wrapped in candidates],
              time.monotonic() + valid_for)
    if _loading.get(key) is asyncio.current_task():  # not forgotten (a rotation) while it loaded
        _verifiers[key] = loaded
    return loaded


def forget(carrier_id: object) -> None:
    _verifiers.pop(str(carrier_id), None)
    _loading.pop(str(carrier_id), None)


async def verify_hook(carrier_id: object, body: bytes, headers: dict[str, str]) -> dict:
    """The carrier, if the Standard Webhooks signature and timestamp hold; else AuthenticationFailed.

    The library's malformed-header errors (bad base64, missing comma) are ValueErrors: also a 401.
    """
    carrier, candidates = await _verifier(carrier_id)
    reason = "signature does not match"
    for secret in candidates:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return carrier
        except WebhookVerificationError as exc:
            reason = str(exc) or reason
        except ValueError:
            reason = "malformed webhook-signature or webhook-timestamp header"
    raise AuthenticationFailed(f"webhook verification failed: {reason}")


async def by_token(token: str | None) -> dict:
    carrier_id = await clients.resolve(token, "carrier")
    if carrier_id is None:
        raise AuthenticationFailed("send a carrier API token: Authorization: Bearer hl_carrier_...")
    carrier, _ = await _verifier(carrier_id)  # the same short-lived cache as the hook's
    return carrier
