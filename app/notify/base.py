from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    to: str
    channel: str  # email | sms
    subject: str
    body: str


class DeliveryFailed(Exception):
    """The transport did not take the message."""


class Notifier(Protocol):
    async def send(self, message: Message) -> None: ...
