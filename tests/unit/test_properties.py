"""Property-based tests (hypothesis) for the parsers that face the outside world and the state machines."""

from __future__ import annotations

import datetime as dt
import io
import string

import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import evidence, legacy, recycling
from app.domain.numbers import normalize
from app.errors import HeirlineError, InvalidNumber
from app.services.lifecycle import parse_payload

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                       max_leaves=12)


@SETTINGS
@given(st.text(max_size=40))
def test_normalize_accepts_or_refuses_cleanly(raw):
    try:
        number = normalize(raw, "CN")
    except InvalidNumber:
        return
    assert number.e164.startswith("+") and number.e164[1:].isdigit() and len(number.e164) <= 16
    assert normalize(number.e164, "US") == number  # E.164 is a fixed point, whatever the default region


@SETTINGS
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", " ", "-"]))
def test_chinese_mobile_numbers_in_any_spacing(digits, sep):
    spaced = sep.join([digits[:3], digits[3:7], digits[7:]])
    try:
        number = normalize(spaced, "CN")
    except InvalidNumber:
        assert not phonenumbers.is_valid_number(phonenumbers.parse(digits, "CN"))
        return
    assert number.e164 == "+86" + digits


@SETTINGS
@given(JSONISH)
def test_hook_payload_never_fails_with_anything_but_a_clean_error(payload):
    try:
        parse_payload(payload, "msg_1", "CN", "CN")
    except HeirlineError as exc:
        assert 400 <= exc.status < 500 and exc.detail


@SETTINGS
@given(st.sampled_from(["number.suspended", "number.disconnected", "number.restored", "number.reassigned",
                        "number.ported_out"]),
       st.dictionaries(st.sampled_from(["phone_number", "disconnected_at", "reason", "line_class", "jurisdiction",
                                        "aging_ends_at", "suspended_at", "restored_at", "reassigned_at",
                                        "ported_at", "new_carrier", "subscriber_ref"]),
                       st.text(max_size=30) | st.none() | st.integers(), max_size=8))
def test_hook_payload_with_plausible_fields(kind, data):
    try:
        event = parse_payload({"type": kind, "timestamp": "x", "data": data}, "msg_1", "CN", "CN")
    except HeirlineError as exc:
        assert 400 <= exc.status < 500
        return
    assert event.number.e164.startswith("+") and event.occurred_at.tzinfo is not None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4096))
def test_evidence_bytes_are_cleaned_or_refused(data):
    try:
        cleaned = evidence.clean(data)
    except HeirlineError as exc:
        assert exc.status in (400, 413, 415, 422)
        return
    assert cleaned.media_type in (evidence.PDF, evidence.JPEG, evidence.PNG)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from([b"%PDF-1.4\n", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n"]))
def test_evidence_with_a_valid_signature_and_garbage_after_it(tail, head):
    try:
        evidence.clean(head + tail)
    except HeirlineError as exc:
        assert exc.status in (400, 413, 415, 422)


@SETTINGS
@given(st.lists(st.sampled_from(list(legacy.CaseEvent)), max_size=12))
def test_legacy_case_machine_never_leaves_a_final_state(events):
    status = legacy.CaseStatus.CHALLENGE
    for event in events:
        try:
            status = legacy.transition(status, event)
        except HeirlineError as exc:
            assert exc.status == 409
    final = {legacy.CaseStatus.COMPLETED, legacy.CaseStatus.VETOED, legacy.CaseStatus.REJECTED, legacy.CaseStatus.EXPIRED}
    for end in final:
        for event in legacy.CaseEvent:
            assert (end, event) not in legacy.TRANSITIONS  # nothing moves a case out of an end


@SETTINGS
@given(st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)),
       st.sampled_from(legacy.VETO_PRESETS))
def test_alerts_fall_inside_the_window(opened, days):
    opened = opened.replace(tzinfo=dt.timezone.utc)
    ends = legacy.veto_window_end(opened, days)
    times = legacy.alert_times(opened, ends)
    assert times[0] == opened and all(opened <= t < ends for t in times) and times == sorted(set(times))


@SETTINGS
@given(st.lists(st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2026, 1, 1)), max_size=5),
       st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2026, 1, 1)))
def test_reassigned_answer_is_monotonic_in_since(disconnections, since):
    history = recycling.History(dt.date(2020, 1, 1), (), tuple(sorted(disconnections)))
    answer = recycling.reassigned_answer(history, since, None)
    if since < dt.date(2020, 1, 1):
        assert answer is recycling.Answer.NO_DATA
    elif answer is recycling.Answer.YES:  # an earlier date can only say yes too
        assert recycling.reassigned_answer(history, max(dt.date(2020, 1, 1), since - dt.timedelta(days=30)),
                                           None) is recycling.Answer.YES


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=12))
def test_camara_dates_parse_or_refuse(value):
    try:
        day = recycling.parse_date(value, "specifiedDate", dt.date(2026, 1, 1), camara=True)
    except recycling.CamaraError as exc:
        assert exc.camara_code in ("INVALID_ARGUMENT", "OUT_OF_RANGE")
        return
    assert day <= dt.date(2026, 1, 1) and day.isoformat() == value


def test_pdf_rewrite_keeps_pages():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=100, height=100)
    out = io.BytesIO()
    writer.write(out)
    assert len(PdfReader(io.BytesIO(evidence.clean(out.getvalue()).content)).pages) == 3
