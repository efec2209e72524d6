"""The owner's inventory: binding types, dispositions and the rules tying them to heirs."""

from __future__ import annotations

from enum import StrEnum

from app.errors import InvalidRequest


class BindingType(StrEnum):
    LOGIN = "login"
    RECOVERY = "recovery"
    TWO_FACTOR = "2fa"
    PAYMENT = "payment"


class Disposition(StrEnum):
    UNBIND = "unbind"
    HANDOVER = "handover"
    MEMORIALIZE = "memorialize"
    DELETE = "delete"
    NOTIFY = "notify"


MAX_HINT = 200
MAX_INSTRUCTIONS = 4000


def binding_types(values: list[str] | tuple[str, ...]) -> list[str]:
    """Validate and order a list of binding types; at least one is needed."""
    known = {t.value for t in BindingType}
    cleaned = sorted({v.strip().lower() for v in values if v and v.strip()})
    unknown = [v for v in cleaned if v not in known]
    if unknown:
        raise InvalidRequest(
            f"unknown binding type {unknown[0]!r}; use {', '.join(t.value for t in BindingType)}",
            field="binding_types",
        )
    if not cleaned:
        raise InvalidRequest("name at least one way the account is bound", field="binding_types")
    return cleaned


def disposition(value: str) -> Disposition:
    try:
        return Disposition(value)
    except ValueError:
        raise InvalidRequest(
            f"unknown disposition {value!r}; use {', '.join(d.value for d in Disposition)}",
            field="disposition",
        ) from None


def check_heir_for_disposition(disp: Disposition, heir_id: object | None) -> None:
    """A handover needs a named heir; other dispositions may name one to be told."""
    if disp is Disposition.HANDOVER and heir_id is None:
        raise InvalidRequest("a handover names the heir who receives the account", field="heir_id")


def check_text(value: str | None, limit: int, field: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidRequest(f"{field} is longer than {limit} characters", field=field)
    return value or None
