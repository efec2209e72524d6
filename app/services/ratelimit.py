"""Sliding-window rate limits kept in the database, so every worker process shares them.

A limit blocks only for its window: nobody can lock another person out for longer.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from app.clock import now
from app.errors import RateLimited
from app.storage.engine import write_transaction
from app.storage.tables import RateEvent


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_seconds: int


OTP_PER_NUMBER = Limit("otp:number", 5, 3600)
OTP_NUMBER_SPACING = Limit("otp:number:spacing", 1, 30)
OTP_PER_CLIENT = Limit("otp:client", 30, 3600)
LOGIN_PER_NUMBER = Limit("login:number", 10, 900)
LOGIN_PER_CLIENT = Limit("login:client", 50, 900)


async def hit(*checks: tuple[Limit, str]) -> None:
    """Count one attempt in each bucket, or raise RateLimited (counting nothing) if one is full."""
    moment = now()
    async with write_transaction():
        for limit, key in checks:
            bucket = f"{limit.name}:{key}"[:120]
            since = moment - dt.timedelta(seconds=limit.window_seconds)
            await RateEvent.delete().where((RateEvent.bucket == bucket) & (RateEvent.at < since))
            recent = await RateEvent.select(RateEvent.at).where(RateEvent.bucket == bucket).order_by(
                RateEvent.at
            )
            if len(recent) >= limit.count:
                oldest = recent[0]["at"]
                wait = (oldest + dt.timedelta(seconds=limit.window_seconds) - moment).total_seconds()
                raise RateLimited("too many attempts; try again later", retry_after=max(1, math.ceil(wait)))
        await RateEvent.insert(
            *[RateEvent(bucket=f"{limit.name}:{key}"[:120], at=moment) for limit, key in checks]
        )


async def forget(limit: Limit, key: str) -> None:
    """Empty one bucket (e.g. the spacing between codes once a code was used)."""
    async with write_transaction():
        await RateEvent.delete().where(RateEvent.bucket == f"{limit.name}:{key}"[:120])
