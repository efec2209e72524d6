"""High-risk and legal holds set by reviewers: clearance is `blocked` until the hold ends."""

from __future__ import annotations

from app import audit
from app.clock import now
from app.domain.numbers import mask, normalize
from app.domain.release import parse_time
from app.errors import InvalidRequest, NotFound
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import NumberHold, PhoneNumber


async def hold(raw_number: str, until: str, reason: str, by: str) -> None:
    number = normalize(raw_number, get_settings().default_region)
    blocked_until = parse_time(until, "until")
    if blocked_until <= now():
        raise InvalidRequest("a hold must end in the future", field="until")
    reason = reason.strip()[:200]
    if not reason:
        raise InvalidRequest("give the reason for the hold", field="reason")
    async with write_transaction():
        row = await PhoneNumber.select(PhoneNumber.id).where(PhoneNumber.e164 == number.e164).first()
        if row is None:  # a hold may come before any carrier event: the number becomes known
            await PhoneNumber.insert(PhoneNumber(e164=number.e164, region=number.region))
            row = await PhoneNumber.select(PhoneNumber.id).where(PhoneNumber.e164 == number.e164).first()
        await NumberHold.insert(NumberHold(number=row["id"], reason=reason, blocked_until=blocked_until, set_by=by))
        await audit.record("number:hold", actor=by, subject=mask(number.e164),
                           detail={"until": blocked_until.isoformat(), "reason": reason})


async def lift(raw_number: str, by: str) -> int:
    number = normalize(raw_number, get_settings().default_region)
    async with write_transaction():
        row = await PhoneNumber.select(PhoneNumber.id).where(PhoneNumber.e164 == number.e164).first()
        if row is None:
            raise NotFound("no such number")
        active = await NumberHold.count().where((NumberHold.number == row["id"]) & NumberHold.lifted_at.is_null())
        await NumberHold.update({NumberHold.lifted_at: now()}).where(
            (NumberHold.number == row["id"]) & NumberHold.lifted_at.is_null())
        await audit.record("number:hold:lift", actor=by, subject=mask(number.e164), detail={"count": active})
    return active
