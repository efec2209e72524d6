"""Time-ordered row ids (UUID version 7)."""

import time
import uuid

from app.storage.ids import new_id, new_id_texts


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


def test_id_texts_are_the_text_of_version_7_ids_in_order():
    before = time.time_ns() // 1_000_000
    texts = new_id_texts(50_000)
    after = time.time_ns() // 1_000_000
    assert texts == sorted(texts) and len(set(texts)) == 50_000
    for text in texts[:1000]:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after
    assert len({t[19:] for t in texts}) == 50_000  # the random part differs, not only the clock
    assert new_id_texts(0) == []


def test_ids_made_one_after_another_within_a_millisecond_still_sort_in_order():
    """The 12 bits after the version carry the millisecond's fraction (RFC 9562 section 6.2, method 3):
    a bulk import plans its next batch while one is written, often within the same millisecond."""
    batches = [new_id_texts(3) for _ in range(200)]
    assert [text for batch in batches for text in batch] == sorted(text for batch in batches for text in batch)
    singles = []
    for _ in range(200):
        singles.append(new_id())
        time.sleep(0.000_01)
    assert singles == sorted(singles)
