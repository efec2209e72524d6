"""Signing keys for Security Event Tokens, the published JWKS, and SET signing (PyJWT).

Keys are made on first use (RS256, 2048 bits, and ES256), stored sealed under the key-encryption
key, and cached in the process once opened. Rotation retires the current keys: they sign nothing
new but stay in the JWKS while SETs they signed are still undelivered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app import audit
from app.clock import now
from app.crypto.envelope import WrappedKey, seal, unseal
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import Notice, SigningKey

ALGORITHMS = ("RS256", "ES256")
_private_keys: dict[str, object] = {}


def _generate(alg: str):
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _public_jwk(alg: str, key, kid: str) -> dict:
    maker = RSAAlgorithm if alg == "RS256" else ECAlgorithm
    jwk = json.loads(maker.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


async def _create(alg: str) -> None:
    key = _generate(alg)
    kid = f"{alg.lower()}-{uuid.uuid4().hex[:16]}"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    sealed = seal(get_settings().keyring, f"signing-key:{kid}", pem)
    await SigningKey.insert(SigningKey(kid=kid, alg=alg, private_ct=sealed.blob, private_kek_id=sealed.kek_id,
                                       public_jwk=json.dumps(_public_jwk(alg, key, kid))))
    await audit.record("key:signing:create", actor="system", subject=kid, detail={"alg": alg})


async def ensure_keys() -> None:
    """One active key per algorithm."""
    active = {r["alg"] for r in await SigningKey.select(SigningKey.alg).where(SigningKey.retired_at.is_null())}
    missing = [alg for alg in ALGORITHMS if alg not in active]
    if missing:
        async with write_transaction():
            active = {r["alg"] for r in await SigningKey.select(SigningKey.alg).where(SigningKey.retired_at.is_null())}
            for alg in ALGORITHMS:
                if alg not in active:
                    await _create(alg)


async def rotate() -> list[str]:
    """Retire the active keys and make new ones; returns the new kids."""
    forget_active()
    async with write_transaction():
        await SigningKey.update({SigningKey.retired_at: now()}).where(SigningKey.retired_at.is_null())
        for alg in ALGORITHMS:
            await _create(alg)
        await audit.record("key:signing:rotate", actor="operator")
    return [r["kid"] for r in await SigningKey.select(SigningKey.kid).where(SigningKey.retired_at.is_null())]


RETIRED_GRACE = dt.timedelta(days=1)


async def jwks() -> dict:
    """Active keys; retired keys for a day (SETs they signed may still be in flight or being verified),
    and after that while SETs they signed wait to be delivered or polled."""
    await ensure_keys()
    keys = await SigningKey.select(SigningKey.kid, SigningKey.public_jwk, SigningKey.retired_at)
    outstanding = {r["kid"] for r in await Notice.select(Notice.kid).where(
        Notice.status.is_in(["pending", "sending"]) & (Notice.kid != "")).distinct()}
    recent = now() - RETIRED_GRACE
    return {"keys": [json.loads(k["public_jwk"]) for k in keys
                     if k["retired_at"] is None or k["retired_at"] > recent or k["kid"] in outstanding]}


# two threads sign for the whole process, a batch each: OpenSSL releases the interpreter lock while it
# signs, so when RSA is slow (0.67 ms a signature in this machine's slow hours, 0.27 in its fast ones) a
# second one keeps the fan-out off a one-core ceiling (SQLite 972 -> 1,140 deliveries/s, alternated);
# and no crowd of threads taking turns at the lock with the event loop and the database thread (each
# turn can cost the loop milliseconds: one thread per notice was slower than one for all)
_signer = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="heirline-sign")

_active_cache: dict[str, tuple[str, object, float]] = {}
ACTIVE_CACHE_SECONDS = 5.0


def forget_active() -> None:
    """Drop the cached active keys (after a rotation, or when the database changes under us in tests)."""
    _active_cache.clear()


async def _active(alg: str) -> tuple[str, object]:
    cached = _active_cache.get(alg)
    if cached and cached[2] > time.monotonic():
        return cached[0], cached[1]
    row = await SigningKey.select(SigningKey.kid, SigningKey.private_ct, SigningKey.private_kek_id).where(
        (SigningKey.alg == alg) & SigningKey.retired_at.is_null()).first()
    if row is None:
        await ensure_keys()
        return await _active(alg)
    kid = row["kid"]
    if kid not in _private_keys:
        pem = unseal(get_settings().keyring, f"signing-key:{kid}", WrappedKey(row["private_kek_id"],
                                                                             bytes(row["private_ct"])))
        _private_keys[kid] = serialization.load_pem_private_key(pem, password=None)
    _active_cache[alg] = (kid, _private_keys[kid], time.monotonic() + ACTIVE_CACHE_SECONDS)
    return kid, _private_keys[kid]


async def sign(claims: dict, alg: str = "RS256") -> tuple[str, str]:
    """The compact SET and the kid that signed it."""
    [(token, kid)] = await sign_many([claims], alg)
    return token, kid


async def sign_many(claims: list[dict], alg: str = "RS256") -> list[tuple[str, str]]:
    """Several SETs, signed by the same active key in one trip to a thread (a delivery round signs what it
    claimed at once: one hand-over per notice cost the event loop more than the signature itself)."""
    alg = alg if alg in ALGORITHMS else "RS256"
    kid, key = await _active(alg)
    headers = {"typ": "secevent+jwt", "kid": kid}
    # an RS256 signature takes about a quarter of a millisecond of CPU and OpenSSL releases the GIL while
    # it works: off the event loop, deliveries go on (and use the second core) while a batch is signed
    tokens = await asyncio.get_running_loop().run_in_executor(
        _signer, lambda: [jwt.encode(c, key, algorithm=alg, headers=headers) for c in claims])
    return [(token, kid) for token in tokens]
