"""Row identifiers for the hot tables: UUID version 7 (RFC 9562), time-ordered.

Random (version 4) keys scatter every insert across the whole primary-key index, so each batch
rewrites a page per row once the index outgrows the cache; time-ordered keys append to the
index's right edge. Python 3.14 has ``uuid.uuid7``; until then, the layout of RFC 9562 section 5.7:
48 bits of Unix milliseconds, the version, 74 random bits and the variant.
"""

from __future__ import annotations

import os
import time
import uuid

_RANDOM_74 = (1 << 74) - 1
_LOW_62 = (1 << 62) - 1
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_new = object.__new__
_set = object.__setattr__


def new_id() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big") & _RANDOM_74
    value = (millis & ((1 << 48) - 1)) << 80 | _VERSION_7 | (rand >> 62) << 64 | _VARIANT | rand & _LOW_62
    # what uuid.UUID(int=value) does, without re-checking a value built in range (a third of the cost)
    made = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def new_id_texts(count: int) -> list[str]:
    """``count`` new ids as text (what ``str(new_id())`` gives), in ascending order: the keys of a bulk
    insert, from one call for the randomness and without UUID objects, whose conversion to text for
    the driver costs a microsecond per value (SQLite stores the text; asyncpg takes it as well)."""
    millis = f"{time.time_ns() // 1_000_000 & ((1 << 48) - 1):012x}"
    head = f"{millis[:8]}-{millis[8:]}-7"
    noise = os.urandom(10 * count).hex()  # 20 digits an id: 18 as they are, one for the variant's 2 bits
    texts = [f"{head}{noise[at:at + 3]}-{_VARIANT_DIGIT[noise[at + 3]]}{noise[at + 4:at + 7]}-{noise[at + 7:at + 19]}"
             for at in range(0, 20 * count, 20)]
    texts.sort()
    return texts


_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
