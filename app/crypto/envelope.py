"""Envelope encryption of owner data.

Each owner has a random 256-bit data key. It is stored wrapped (AES-256-GCM) by a key-encryption
key (KEK) that lives outside the database, with the KEK's id beside it so keys can rotate. Field
values are encrypted with the data key (AES-256-GCM, random 96-bit nonce) and associated data that
binds the ciphertext to its owner, table, column and row: a ciphertext copied to another row or
owner fails to decrypt. Destroying the wrapped data key (``shred``) makes the owner's data
unrecoverable, backups included.

Wire format of a field: ``b"\\x01" || nonce(12) || ciphertext+tag``.
Wire format of a wrapped key: ``nonce(12) || ciphertext+tag`` (kid kept in its own column).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.settings import KeyRing

FIELD_VERSION = b"\x01"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The data was tampered with, moved, or its key is gone."""


@dataclass(frozen=True)
class WrappedKey:
    kek_id: str
    blob: bytes


def seal(keyring: KeyRing, context: str, secret: bytes) -> WrappedKey:
    """Encrypt a small secret (a data key, a webhook secret) under the active KEK, bound to ``context``."""
    nonce = os.urandom(NONCE_BYTES)
    blob = nonce + AESGCM(keyring.keys[keyring.active]).encrypt(nonce, secret, f"heirline:{context}".encode())
    return WrappedKey(keyring.active, blob)


def unseal(keyring: KeyRing, context: str, wrapped: WrappedKey) -> bytes:
    kek = keyring.keys.get(wrapped.kek_id)
    if kek is None:
        raise DecryptionError(f"key-encryption key {wrapped.kek_id!r} is not configured")
    try:
        return AESGCM(kek).decrypt(wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:],
                                   f"heirline:{context}".encode())
    except InvalidTag as exc:
        raise DecryptionError(f"sealed secret for {context} does not open") from exc


def new_data_key(keyring: KeyRing, owner_id: str) -> tuple[bytes, WrappedKey]:
    key = AESGCM.generate_key(bit_length=256)
    return key, wrap_data_key(keyring, owner_id, key)


def wrap_data_key(keyring: KeyRing, owner_id: str, key: bytes) -> WrappedKey:
    return seal(keyring, f"data-key:{owner_id}", key)


def unwrap_data_key(keyring: KeyRing, owner_id: str, wrapped: WrappedKey) -> bytes:
    return unseal(keyring, f"data-key:{owner_id}", wrapped)


def field_aad(owner_id: str, table: str, column: str, row_id: str) -> bytes:
    return f"heirline:{owner_id}:{table}.{column}:{row_id}".encode()


class FieldCipher:
    """Encrypts and decrypts one owner's fields with that owner's data key."""

    def __init__(self, owner_id: str, data_key: bytes):
        self.owner_id = owner_id
        self._aead = AESGCM(data_key)

    def encrypt(self, plaintext: str | None, table: str, column: str, row_id: str) -> bytes | None:
        if plaintext is None or plaintext == "":
            return None
        nonce = os.urandom(NONCE_BYTES)
        aad = field_aad(self.owner_id, table, column, row_id)
        return FIELD_VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), aad)

    def decrypt(self, blob: bytes | None, table: str, column: str, row_id: str) -> str | None:
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] != FIELD_VERSION:
            raise DecryptionError("unknown field format")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, field_aad(self.owner_id, table, column, row_id)).decode()
        except InvalidTag as exc:
            raise DecryptionError("field does not decrypt") from exc
