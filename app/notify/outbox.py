"""The built-in notifier: messages are stored and shown by `heirline outbox`."""

from __future__ import annotations

from app.notify.base import Message
from app.clock import now
from app.storage.engine import insert_rows, write_transaction
from app.storage.tables import OutboxMessage


class OutboxNotifier:
    async def send(self, message: Message) -> None:
        await self.send_many([message])

    async def send_many(self, messages: list[Message]) -> None:
        moment = now()
        async with write_transaction():
            await insert_rows(OutboxMessage, [
                dict(recipient=m.to, channel=m.channel, subject=m.subject[:200], body=m.body, created_at=moment)
                for m in messages])


async def sent(to: str | None = None, limit: int = 100) -> list[dict]:
    query = OutboxMessage.select(
        OutboxMessage.recipient.as_alias("to"),
        OutboxMessage.channel,
        OutboxMessage.subject,
        OutboxMessage.body,
        OutboxMessage.created_at,
    ).order_by(OutboxMessage.created_at, ascending=False).limit(limit)
    if to:
        query = query.where(OutboxMessage.recipient == to)
    return list(reversed(await query))
