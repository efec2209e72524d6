"""Phone numbers: normalisation to E.164 and the jurisdiction a number belongs to."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import (COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumber,
                          PhoneNumberType, region_code_for_country_code)

from app.errors import InvalidNumber

MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
# already E.164 and no leading zero after the country code: what carriers' files and the hook carry
_CANONICAL = re.compile(r"\+([1-9]\d{6,14})")


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
    parsed = _parse_canonical(text)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(text, default_region)
        except NumberParseException as exc:
            raise InvalidNumber(f"not a phone number: {exc}", field="phone_number") from exc
    kind = phonenumbers.number_type(parsed)  # UNKNOWN exactly when the number is not valid for its country
    if kind is PhoneNumberType.UNKNOWN:
        raise InvalidNumber("not a valid phone number for its country", field="phone_number")
    if kind not in MOBILE_TYPES:
        raise InvalidNumber("not a mobile number", field="phone_number")
    region = phonenumbers.region_code_for_number(parsed) or default_region
    return Number(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), region)


def already_e164(text: str) -> bool:
    """Whether ``text`` is written exactly as :func:`normalize` would return it, should the number be
    valid: the shape alone, a microsecond, without the validity check's ten."""
    return _canonical_split(text) is not None


def _parse_canonical(text: str) -> PhoneNumber | None:
    """``+<country code><national number>`` split without the general parser (a tenth of its cost,
    which matters for million-row files); anything else, or a leading zero, takes the general path."""
    split = _canonical_split(text)
    return None if split is None else PhoneNumber(country_code=split[0], national_number=split[1])


def _canonical_split(text: str) -> tuple[int, int] | None:
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return None
    digits = match.group(1)
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            if not national or national[0] == "0" or _may_strip_prefix(code, national):
                return None
            return code, int(national)
    return None


@functools.cache
def _national_prefix(code: int) -> re.Pattern | None:
    """The national prefix the general parser may strip after this country code (``+1 1 201 ...`` is
    read as ``+1 201 ...``), from the metadata of the code's main region, as the parser takes it."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region_code_for_country_code(code))
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


def _may_strip_prefix(code: int, national: str) -> bool:
    """Whether the general parser might read ``national`` without a leading national prefix: such
    numbers take its path, which decides."""
    prefix = _national_prefix(code)
    return prefix is not None and prefix.match(national) is not None


def mask(e164: str) -> str:
    """``+86138****8000``: for pages and logs that must not show the whole number."""
    if len(e164) < 8:
        return "*" * len(e164)
    return e164[:-8] + "****" + e164[-4:]
