"""One-time codes: 6 digits, stored as a keyed hash, single use, short-lived, 5 tries."""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum

from app.clock import now
from app.crypto.secrets import keyed_hash, new_numeric_code, same
from app.domain.numbers import Number
from app.domain.numbers import mask
from app.errors import InvalidRequest, Unavailable
from app.notify import DeliveryFailed, Message, notifier
from app.services import ratelimit
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import OneTimeCode

MAX_ATTEMPTS = 5
log = logging.getLogger("heirline.codes")


class Purpose(StrEnum):
    SIGNUP = "signup"
    LOGIN = "login"
    NEW_HOLDER = "new_holder"
    STEP_UP = "step_up"


def purpose(value: str) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        raise InvalidRequest(
            f"unknown purpose {value!r}; use {', '.join(p.value for p in Purpose)}", field="purpose"
        ) from None


def _hash(e164: str, why: Purpose, code: str) -> str:
    return keyed_hash(get_settings().secret_key, "otp", why.value, e164, code)


_TEXT = {
    "zh": "【Heirline】验证码 {code}，{minutes} 分钟内有效。请勿告诉任何人。",
    "en": "Heirline code: {code}. Valid for {minutes} minutes. Never share it.",
}


async def send_code(number: Number, why: Purpose, *, client: str, locale: str = "zh") -> None:
    """Issue a new code for the number (earlier unused ones stop working) and text it."""
    await _issue(number.e164, "sms", why, client=client, locale=locale)


async def send_email_code(email: str, why: Purpose, *, client: str, locale: str = "zh") -> None:
    """The same for an account's e-mail address (heirs, executors and reviewers log in by e-mail)."""
    await _issue(email, "email", why, client=client, locale=locale)


async def _issue(address: str, channel: str, why: Purpose, *, client: str, locale: str) -> None:
    await ratelimit.hit(
        (ratelimit.OTP_NUMBER_SPACING, f"{address}:{why.value}"),
        (ratelimit.OTP_PER_NUMBER, address),
        (ratelimit.OTP_PER_CLIENT, client),
    )
    code = new_numeric_code()
    moment = now()
    ttl = get_settings().otp_ttl_seconds
    async with write_transaction():
        await OneTimeCode.update({OneTimeCode.expires_at: moment}).where(
            (OneTimeCode.e164 == address)
            & (OneTimeCode.purpose == why.value)
            & (OneTimeCode.used_at.is_null())
            & (OneTimeCode.expires_at > moment)
        )
        await OneTimeCode.insert(
            OneTimeCode(
                e164=address,
                purpose=why.value,
                code_hash=_hash(address, why, code),
                expires_at=moment + dt.timedelta(seconds=ttl),
            )
        )
    text = _TEXT.get(locale, _TEXT["en"]).format(code=code, minutes=ttl // 60)
    try:
        await notifier().send(Message(to=address, channel=channel, subject="Heirline code", body=text))
    except DeliveryFailed as exc:
        log.error("one-time code to %s not delivered: %s", mask(address) if channel == "sms" else "an e-mail", exc)
        raise Unavailable("the code could not be sent right now; try again in a minute", retry_after=60) from exc


async def redeem(e164: str, why: Purpose, code: object) -> bool:
    """True once for the right code; every try counts, and a code dies after MAX_ATTEMPTS.

    Runs in its own transaction so that failed tries are remembered.
    """
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return False
    moment = now()
    async with write_transaction():
        row = await OneTimeCode.select().where(
            (OneTimeCode.e164 == e164)
            & (OneTimeCode.purpose == why.value)
            & (OneTimeCode.used_at.is_null())
            & (OneTimeCode.expires_at > moment)
        ).order_by(OneTimeCode.created_at, ascending=False).first()
        if row is None:
            return False
        attempts = row["attempts"] + 1
        ok = attempts <= MAX_ATTEMPTS and same(row["code_hash"], _hash(e164, why, code))
        await OneTimeCode.update(
            {OneTimeCode.attempts: attempts, OneTimeCode.used_at: moment if ok else None}
        ).where(OneTimeCode.id == row["id"])
    if ok:  # a resend waits a little; a new login after a used code does not
        await ratelimit.forget(ratelimit.OTP_NUMBER_SPACING, f"{e164}:{why.value}")
    return ok
