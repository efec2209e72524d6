"""Helpers shared by the tests."""

from __future__ import annotations

import re

from app.storage.tables import OutboxMessage


async def last_code(e164: str) -> str:
    """The newest one-time code the built-in notifier texted to a number."""
    row = await OutboxMessage.select(OutboxMessage.body).where(OutboxMessage.recipient == e164).order_by(
        OutboxMessage.created_at, ascending=False
    ).first()
    assert row is not None, f"no message was sent to {e164}"
    return re.search(r"\b(\d{6})\b", row["body"]).group(1)


class Owner:
    """A signed-up owner with a bearer token, for API tests."""

    def __init__(self, phone: str, token: str, owner_id: str, password: str):
        self.phone, self.token, self.id, self.password = phone, token, owner_id, password

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client, phone: str, password: str = "correct horse battery", email: str | None = None) -> Owner:
    response = await client.post("/v1/otp", json={"phone_number": phone, "purpose": "signup"})
    assert response.status_code == 202, response.text
    code = await last_code(phone)
    response = await client.post("/v1/owners", json={
        "phone_number": phone, "code": code, "password": password,
        "email": email or f"owner{phone[-4:]}@example.com",
    })
    assert response.status_code == 201, response.text
    body = response.json()
    return Owner(phone, body["token"], body["owner_id"], password)



async def platform_id(client, slug: str) -> str:
    platforms = (await client.get("/v1/platforms")).json()
    return next(p["id"] for p in platforms if p["slug"] == slug)
