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


def new_id() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big") & _RANDOM_74
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
