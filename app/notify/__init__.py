"""Notifications behind one interface: ``await notifier().send(Message(...))``.

Channels: ``email`` goes by SMTP when HEIRLINE_SMTP_URL is set, ``sms`` through the HTTP SMS
gateway when HEIRLINE_SMS_GATEWAY_URL is set; anything without a configured transport lands in
the built-in outbox (demo, tests, and `heirline outbox`).
"""

from __future__ import annotations

from app.notify.base import DeliveryFailed, Message, Notifier
from app.notify.router import notifier

__all__ = ["DeliveryFailed", "Message", "Notifier", "notifier"]
