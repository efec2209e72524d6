from __future__ import annotations

from functools import lru_cache

from app.notify.base import DeliveryFailed, Message, Notifier
from app.notify.outbox import OutboxNotifier
from app.notify.smtp import SmtpNotifier
from app.notify.sms import SmsGatewayNotifier
from app.settings import get_settings


class ChannelRouter:
    """Sends each message by the transport configured for its channel, else to the outbox."""

    def __init__(self, by_channel: dict[str, Notifier], fallback: Notifier):
        self.by_channel = by_channel
        self.fallback = fallback

    async def send(self, message: Message) -> None:
        await self.by_channel.get(message.channel, self.fallback).send(message)

    async def send_all(self, messages: list[Message]) -> list[tuple[Message, Exception]]:
        """Send many; the outbox takes its share in one transaction. Returns the messages that failed."""
        return await self.deliver(await self.keep(messages))

    async def keep(self, messages: list[Message]) -> list[Message]:
        """Store the messages no transport is configured for in the outbox, in the caller's transaction
        if one is open (they commit with the change they tell of); return the others, for :meth:`deliver`
        once that transaction has committed."""
        to_outbox = [m for m in messages if m.channel not in self.by_channel]
        if to_outbox:
            await self.fallback.send_many(to_outbox)
        return [m for m in messages if m.channel in self.by_channel]

    async def deliver(self, messages: list[Message]) -> list[tuple[Message, Exception]]:
        """Send by the configured transports; returns the messages that failed."""
        failed: list[tuple[Message, Exception]] = []
        for message in messages:
            try:
                await self.by_channel[message.channel].send(message)
            except DeliveryFailed as exc:
                failed.append((message, exc))
        return failed


@lru_cache(maxsize=1)
def notifier() -> ChannelRouter:
    settings = get_settings()
    by_channel: dict[str, Notifier] = {}
    if settings.smtp_url:
        by_channel["email"] = SmtpNotifier(settings.smtp_url, settings.mail_from)
    if settings.sms_gateway_url:
        by_channel["sms"] = SmsGatewayNotifier(settings.sms_gateway_url, settings.sms_gateway_token)
    return ChannelRouter(by_channel, OutboxNotifier())
