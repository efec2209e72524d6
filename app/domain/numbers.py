"""Phone numbers: normalisation to E.164 and the jurisdiction a number belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.errors import InvalidNumber

MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


@dataclass(frozen=True)
class Number:
    e164: str
    region: str  # ISO 3166-1 alpha-2 of the number's country


def normalize(raw: object, default_region: str = "CN") -> Number:
    """Parse national or spaced input and return the E.164 form, or raise InvalidNumber.

    Only numbers that are valid for their country and can be mobile numbers are accepted: the
    registry is about numbers that apps bind accounts to and carriers recycle.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidNumber("a phone number is required", field="phone_number")
    text = raw.strip()
    if len(text) > 32:
        raise InvalidNumber("phone number is too long", field="phone_number")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc}", field="phone_number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number for its country", field="phone_number")
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        raise InvalidNumber("not a mobile number", field="phone_number")
    region = phonenumbers.region_code_for_number(parsed) or default_region
    return Number(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), region)


def mask(e164: str) -> str:
    """``+86138****8000``: for pages and logs that must not show the whole number."""
    if len(e164) < 8:
        return "*" * len(e164)
    return e164[:-8] + "****" + e164[-4:]
