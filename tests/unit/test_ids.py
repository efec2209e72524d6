"""Time-ordered row ids (UUID version 7)."""

import time
import uuid

from app.storage.ids import new_id


def test_ids_are_version_7_with_the_rfc_variant():
    value = new_id()
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert uuid.UUID(str(value)) == value and hash(uuid.UUID(str(value))) == hash(value)
    assert uuid.UUID(bytes=value.bytes) == value and value.is_safe is uuid.SafeUUID.unknown


def test_ids_carry_the_time_and_sort_by_it():
    before = time.time_ns() // 1_000_000
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 <= after
    assert first < second and str(first) < str(second)  # text order too: SQLite stores them as text


def test_ids_do_not_repeat():
    assert len({new_id() for _ in range(100_000)}) == 100_000
