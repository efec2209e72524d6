"""The built-in notifier: messages are stored and shown by `heirline outbox`."""

from __future__ import annotations

from app.notify.base import Message
from app.storage.engine import write_transaction
from app.storage.tables import OutboxMessage


class OutboxNotifier:
    async def send(self, message: Message) -> None:
        async with write_transaction():
            await OutboxMessage.insert(
                OutboxMessage(
                    recipient=message.to,
                    channel=message.channel,
                    subject=message.subject[:200],
                    body=message.body,
                )
            )


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
