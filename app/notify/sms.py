"""SMS through an HTTP gateway.

``POST HEIRLINE_SMS_GATEWAY_URL`` with ``{"to": "+86...", "text": "..."}`` and
``Authorization: Bearer HEIRLINE_SMS_GATEWAY_TOKEN``; any 2xx means accepted. Most aggregators
take this shape, or a small relay in front of them does.
"""

from __future__ import annotations

import httpx

from app.notify.base import DeliveryFailed, Message


class SmsGatewayNotifier:
    def __init__(self, url: str, token: str = "", timeout: float = 10.0):
        self.url = url
        self.token = token
        self.timeout = timeout

    async def send(self, message: Message) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                response = await client.post(
                    self.url, json={"to": message.to, "text": message.body}, headers=headers
                )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"SMS gateway unreachable: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"SMS gateway answered {response.status_code}")
