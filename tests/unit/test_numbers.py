import pytest
from hypothesis import given, strategies as st

from app.domain.numbers import mask, normalize
from app.errors import InvalidNumber


@pytest.mark.parametrize("raw, region, e164", [
    ("13800138000", "CN", "+8613800138000"),
    ("138 0013 8000", "CN", "+8613800138000"),
    ("+86 138-0013-8000", "US", "+8613800138000"),
    ("(415) 555-2671", "US", "+14155552671"),
    ("+1 415 555 2671", "CN", "+14155552671"),
])
def test_national_and_spaced_forms_become_e164(raw, region, e164):
    assert normalize(raw, region).e164 == e164


@pytest.mark.parametrize("raw", ["", "   ", "12345", "+86 10 6552 9988", "abc", "+999 1234 5678", "1" * 40, None, 13800138000])
def test_invalid_numbers_raise(raw):
    with pytest.raises(InvalidNumber):
        normalize(raw, "CN")


def test_region_is_taken_from_the_number():
    assert normalize("+14155552671", "CN").region == "US"
    assert normalize("13800138000", "CN").region == "CN"


def test_mask_hides_the_middle():
    assert mask("+8613800138000") == "+86138****8000"


@given(st.text(max_size=40))
def test_normalize_never_crashes(text):
    try:
        number = normalize(text, "CN")
    except InvalidNumber:
        return
    assert number.e164.startswith("+") and number.e164[1:].isdigit()
