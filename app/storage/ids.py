"""Row identifiers for the hot tables: UUID version 7 (RFC 9562), time-ordered.

Random (version 4) keys scatter every insert across the whole primary-key index, so each batch
rewrites a page per row once the index outgrows the cache; time-ordered keys append to the
index's right edge. Python 3.14 has ``uuid.uuid7``; until then, the layout of RFC 9562 section 5.7:
48 bits of Unix milliseconds, the version, the millisecond's fraction in 12 bits (section 6.2,
method 3), the variant and 62 random bits.
"""

from __future__ import annotations

import os
import time
import uuid

_LOW_62 = (1 << 62) - 1
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_new = object.__new__
_set = object.__setattr__


def _clock() -> tuple[int, int]:
    """Unix milliseconds, and the millisecond's fraction in 12 bits (about 244 ns): the ``rand_a`` field
    as RFC 9562 section 6.2 method 3 fills it, so that ids made one after another within a millisecond
    (a bulk import plans its next batch while one is written) still sort in the order they were made."""
    nanos = time.time_ns()
    return nanos // 1_000_000 & ((1 << 48) - 1), (nanos % 1_000_000) * 4096 // 1_000_000


def new_id() -> uuid.UUID:
    millis, fraction = _clock()
    rand = int.from_bytes(os.urandom(8), "big") & _LOW_62
    value = millis << 80 | _VERSION_7 | fraction << 64 | _VARIANT | rand
    # what uuid.UUID(int=value) does, without re-checking a value built in range (a third of the cost)
    made = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def new_id_texts(count: int) -> list[str]:
    """``count`` new ids as text (what ``str(new_id())`` gives), in ascending order: the keys of a bulk
    insert, from one call for the randomness and without UUID objects, whose conversion to text for
    the driver costs a microsecond per value (SQLite stores the text; asyncpg takes it as well)."""
    millis, fraction = _clock()
    head = f"{millis:012x}"
    head = f"{head[:8]}-{head[8:]}-7{fraction:03x}-"
    noise = os.urandom(8 * count).hex()  # 16 digits an id: 15 as they are, one for the variant's 2 bits
    texts = [f"{head}{_VARIANT_DIGIT[noise[at]]}{noise[at + 1:at + 4]}-{noise[at + 4:at + 16]}"
             for at in range(0, 16 * count, 16)]
    texts.sort()
    return texts


_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
