"""Passwords (Argon2id, off the event loop), random tokens and keyed hashes."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

import anyio.to_thread
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

# RFC 9106 second recommended option (64 MiB), about 0.2 s on this machine
_ARGON = {"iterations": 3, "lanes": 4, "memory_cost": 64 * 1024}


def _hash_password(password: str) -> str:
    kdf = Argon2id(salt=secrets.token_bytes(16), length=32, **_ARGON)
    return kdf.derive_phc_encoded(password.encode())


def _verify_password(password: str, phc: str) -> bool:
    try:
        Argon2id.verify_phc_encoded(password.encode(), phc)
        return True
    except (InvalidKey, ValueError):
        return False


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hash_password, password)


async def verify_password(password: str, phc: str) -> bool:
    return await anyio.to_thread.run_sync(_verify_password, password, phc)


@functools.cache
def _dummy_phc() -> str:
    return _hash_password("heirline-dummy-password")


async def burn_password_check(password: str) -> None:
    """Spend the same time as a real check when the account does not exist, so timing does not tell."""
    await anyio.to_thread.run_sync(_verify_password, password, _dummy_phc())


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"
