from __future__ import annotations

import asyncio
import datetime as dt
import logging
from functools import lru_cache

from app.clock import now
from app.notify import outbox
from app.notify.base import DeliveryFailed, Message, Notifier
from app.notify.outbox import OutboxNotifier
from app.notify.smtp import SmtpNotifier
from app.notify.sms import SmsGatewayNotifier
from app.settings import get_settings

log = logging.getLogger("heirline.notify")

ATTEMPTS = 8  # then the message is failed and logged for the operator
FIRST_RETRY = dt.timedelta(seconds=30)  # doubled after each failure
LAST_RETRY = dt.timedelta(hours=1)
LEASE = dt.timedelta(minutes=2)  # longer than any transport's timeout: then a stopped sender's claim frees up
AT_ONCE = 8  # messages in flight


class ChannelRouter:
    """Each message by the transport configured for its channel, else kept in the outbox.

    :meth:`send` sends at once and raises :class:`DeliveryFailed` (a one-time code: the person waiting
    asks again). Everything else is written to the outbox with the change it tells of (:meth:`keep`)
    and sent from there by :meth:`deliver_due`, which the worker runs, with retries.
    """

    def __init__(self, by_channel: dict[str, Notifier], fallback: Notifier):
        self.by_channel = by_channel
        self.fallback = fallback

    async def send(self, message: Message) -> None:
        await self.by_channel.get(message.channel, self.fallback).send(message)

    async def keep(self, messages: list[Message]) -> None:
        """Write the messages to the outbox, in the caller's transaction if one is open (they commit with
        the change they tell of); those with a transport go out from there."""
        await outbox.store(messages, routed=set(self.by_channel))

    async def deliver_due(self, limit: int = 100) -> int:
        """Send what is due in the outbox; returns how many were attempted. A failed attempt is retried
        later (30 s, doubling up to an hour), up to ATTEMPTS times."""
        if not self.by_channel:
            return 0
        due = await outbox.claim(limit, LEASE)
        gate = asyncio.Semaphore(AT_ONCE)

        async def attempt(message: dict) -> None:
            async with gate:
                await self._attempt(message)

        await asyncio.gather(*(attempt(message) for message in due))
        return len(due)

    async def _attempt(self, row: dict) -> None:
        transport = self.by_channel.get(row["channel"])
        try:
            if transport is None:
                raise DeliveryFailed(f"no transport for {row['channel']} any more")
            await transport.send(Message(row["recipient"], row["channel"], row["subject"], row["body"]))
        except Exception as exc:  # DeliveryFailed, or anything a transport let through
            tried = row["attempts"] + 1
            if tried >= ATTEMPTS:
                log.error("message %s by %s failed %d times, giving up: %s", row["id"], row["channel"], tried, exc)
                await outbox.record(row["id"], outbox.FAILED, error=str(exc))
            else:
                log.warning("message %s by %s failed (attempt %d), retrying: %s", row["id"], row["channel"], tried, exc)
                wait = min(FIRST_RETRY * 2 ** (tried - 1), LAST_RETRY)
                await outbox.record(row["id"], outbox.PENDING, now() + wait, str(exc))
            return
        await outbox.record(row["id"], outbox.SENT)


@lru_cache(maxsize=1)
def notifier() -> ChannelRouter:
    settings = get_settings()
    by_channel: dict[str, Notifier] = {}
    if settings.smtp_url:
        by_channel["email"] = SmtpNotifier(settings.smtp_url, settings.mail_from)
    if settings.sms_gateway_url:
        by_channel["sms"] = SmsGatewayNotifier(settings.sms_gateway_url, settings.sms_gateway_token)
    return ChannelRouter(by_channel, OutboxNotifier())
