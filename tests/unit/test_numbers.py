import pytest
from hypothesis import given, strategies as st

from app.domain.numbers import MOBILE_TYPES, already_e164, mask, normalize
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


def _general(text: str):
    """The same question answered by the general parser only (the path before the E.164 shortcut)."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("text", ["+8613800138000", "+14155552671", "+447700900123", "+393123456789",
                                  "+390612345678", "+8601380013800", "+2250701234567", "+99912345678",
                                  "+112012000000", "+447007009001"])
def test_e164_shortcut_agrees_with_the_general_parser(text):
    try:
        ours = normalize(text, "CN").e164
    except InvalidNumber:
        ours = None
    assert ours == _general(text)


@given(st.one_of(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
                 st.from_regex(r"\+(861[3-9]|1[2-9][0-9]{2}[2-9]|447|393)[0-9]{7,9}", fullmatch=True)))
def test_e164_shortcut_agrees_on_any_digits(text):
    try:
        ours = normalize(text, "CN").e164
    except InvalidNumber:
        ours = None
    assert ours == _general(text)


@given(st.one_of(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
                 st.from_regex(r"\+(861[3-9]|1[2-9][0-9]{2}[2-9]|447|393)[0-9]{7,9}", fullmatch=True),
                 st.from_regex(r"\s*\+?0?[0-9 -]{5,16}\s*", fullmatch=True)))
def test_already_e164_means_normalize_would_return_it_unchanged(text):
    """Clearance skips the validity check for a number the registry holds exactly as written: that is only
    sound if such text is what normalize returns whenever the number is valid."""
    if not already_e164(text):
        return
    try:
        assert normalize(text, "CN").e164 == text
    except InvalidNumber:
        pass


def test_already_e164_rejects_other_shapes():
    assert already_e164("+8613800138000")
    assert not any(already_e164(t) for t in ["13800138000", " +8613800138000", "+86 138 0013 8000",
                                              "+8601380013800", "+0123456789", "+86138001380001234"])
