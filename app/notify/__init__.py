"""Notifications behind one interface: ``await notifier().send(Message(...))``.

Channels: ``email`` goes by SMTP when HEIRLINE_SMTP_URL is set, ``sms`` through the HTTP SMS
gateway when HEIRLINE_SMS_GATEWAY_URL is set; anything without a configured transport is kept in
the built-in outbox (demo, tests, and `heirline outbox`). Only one-time codes are sent at once
(``send``); every other message is written to the outbox with the change it tells of (``keep``)
and sent from there by the worker (`heirline worker`, or inside `heirline serve` on
the embedded SQLite), retried until it goes out.
"""

from __future__ import annotations

from app.notify.base import DeliveryFailed, Message, Notifier
from app.notify.router import notifier

__all__ = ["DeliveryFailed", "Message", "Notifier", "notifier"]
