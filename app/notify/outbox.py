"""The outbox: every message to a person is written here with the change it tells of.

A message with no transport configured for its channel is ``kept`` (the built-in notifier: demo, tests,
`heirline outbox`). A message for a configured transport is ``pending`` and goes out from here (see
:meth:`app.notify.router.ChannelRouter.deliver_due`), so it is sent even if the process stops right
after the commit, and an SMTP server or SMS gateway that is slow or down holds up neither the request
that wrote it nor anything else.
"""

from __future__ import annotations

import datetime as dt

from app.clock import now
from app.notify.base import Message
from app.storage.engine import insert_rows, is_sqlite, write_transaction
from app.storage.tables import OutboxMessage

KEPT, PENDING, SENDING, SENT, FAILED = "kept", "pending", "sending", "sent", "failed"


class OutboxNotifier:
    """The built-in notifier: keeps each message in the outbox."""

    async def send(self, message: Message) -> None:
        await store([message], routed=set())


async def store(messages: list[Message], routed: set[str]) -> None:
    """Write the messages, in the caller's transaction if one is open: those whose channel is in
    ``routed`` (has a transport) as pending, the others as kept."""
    if not messages:
        return
    moment = now()
    async with write_transaction():
        await insert_rows(OutboxMessage, [
            dict(recipient=m.to, channel=m.channel, subject=m.subject[:200], body=m.body, created_at=moment,
                 status=PENDING if m.channel in routed else KEPT, attempts=0,
                 next_attempt_at=moment if m.channel in routed else None, last_error="")
            for m in messages])


async def claim(limit: int, lease: dt.timedelta) -> list[dict]:
    """Take up to ``limit`` messages due to be sent (pending and due, or sending under a lease that ran
    out: a sender that stopped mid-way), under a lease of their own."""
    moment = now()
    async with write_transaction():
        query = OutboxMessage.select(
            OutboxMessage.id, OutboxMessage.recipient, OutboxMessage.channel, OutboxMessage.subject,
            OutboxMessage.body, OutboxMessage.attempts,
        ).where(OutboxMessage.status.is_in([PENDING, SENDING]) & (OutboxMessage.next_attempt_at <= moment)
                ).order_by(OutboxMessage.next_attempt_at).limit(limit)
        if not is_sqlite():  # two senders (web workers' embedded workers, `heirline worker`) take different rows
            query = query.lock_rows("UPDATE", skip_locked=True)
        due = await query
        if due:
            await OutboxMessage.update({OutboxMessage.status: SENDING, OutboxMessage.next_attempt_at: moment + lease,
                                        OutboxMessage.attempts: OutboxMessage.attempts + 1}).where(
                OutboxMessage.id.is_in([m["id"] for m in due]))
    return due


async def record(message_id, status: str, next_attempt_at: dt.datetime | None = None, error: str = "") -> None:
    """The outcome of one attempt; a sent message keeps no body (codes, links)."""
    changes = {OutboxMessage.status: status, OutboxMessage.next_attempt_at: next_attempt_at,
               OutboxMessage.last_error: error[:200]}
    if status == SENT:
        changes[OutboxMessage.body] = ""
    async with write_transaction():
        await OutboxMessage.update(changes).where(OutboxMessage.id == message_id)


async def sent(to: str | None = None, limit: int = 100) -> list[dict]:
    """The messages the built-in notifier kept, newest last."""
    query = OutboxMessage.select(
        OutboxMessage.recipient.as_alias("to"),
        OutboxMessage.channel,
        OutboxMessage.subject,
        OutboxMessage.body,
        OutboxMessage.created_at,
    ).where(OutboxMessage.status == KEPT).order_by(OutboxMessage.created_at, ascending=False).limit(limit)
    if to:
        query = query.where(OutboxMessage.recipient == to)
    return list(reversed(await query))
