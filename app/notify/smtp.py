"""E-mail over SMTP: ``HEIRLINE_SMTP_URL=smtp://user:password@host:587?starttls=1`` (or smtps://)."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

import aiosmtplib

from app.notify.base import DeliveryFailed, Message


class SmtpNotifier:
    def __init__(self, url: str, sender: str, timeout: float = 15.0):
        parsed = urlparse(url)
        if parsed.scheme not in {"smtp", "smtps"} or not parsed.hostname:
            raise ValueError("HEIRLINE_SMTP_URL looks like smtp://user:password@host:587")
        query = parse_qs(parsed.query)
        self.host = parsed.hostname
        self.port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.use_tls = parsed.scheme == "smtps"
        self.start_tls = query.get("starttls", ["0"])[0] in {"1", "true", "yes"}
        self.sender = sender
        self.timeout = timeout

    async def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP delivery to {self.host}:{self.port} failed: {exc}") from exc
