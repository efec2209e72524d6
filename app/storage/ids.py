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
