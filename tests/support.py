"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Iterator

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


async def make_carrier(name: str = "China Mobile Test", jurisdiction: str = "CN", data_since=None):
    """A carrier whose data begins on 2020-01-01 unless told otherwise."""
    import datetime as dt

    from app.services import carriers

    return await carriers.add(name, jurisdiction, data_since or dt.date(2020, 1, 1))


def free_port() -> int:
    """A port free at this moment on 127.0.0.1 (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bearer(carrier) -> dict[str, str]:
    """The Authorization header of a carrier's (or platform's) API token."""
    return {"Authorization": f"Bearer {carrier.api_token}"}


def signed_headers(secret: str, body: bytes, webhook_id: str | None = None, at=None) -> dict[str, str]:
    """Standard Webhooks headers signed with the reference library."""
    import datetime as dt
    import uuid

    from standardwebhooks import Webhook

    at = at or dt.datetime.now(dt.timezone.utc)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    signature = Webhook(secret).sign(webhook_id, at, body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature, "content-type": "application/json"}


def event_body(kind: str, phone: str, **data) -> bytes:
    import datetime as dt
    import json

    moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    field = {"number.suspended": "suspended_at", "number.disconnected": "disconnected_at",
             "number.restored": "restored_at", "number.reassigned": "reassigned_at",
             "number.ported_out": "ported_at"}[kind]
    payload = {"phone_number": phone, field: moment}
    if kind == "number.disconnected":
        payload.update({"reason": "voluntary", "line_class": "residential"})
    payload.update(data)
    return json.dumps({"type": kind, "timestamp": moment, "data": payload}).encode()


async def send_event(client, carrier, kind: str, phone: str, webhook_id: str | None = None, **data):
    body = event_body(kind, phone, **data)
    return await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                             headers=signed_headers(carrier.webhook_secret, body, webhook_id))


# ---------------------------------------------------------------- heirs, claims, reviewers


async def messages_to(address: str) -> list[dict]:
    rows = await OutboxMessage.select(OutboxMessage.subject, OutboxMessage.body, OutboxMessage.channel).where(
        OutboxMessage.recipient == address).order_by(OutboxMessage.created_at)
    return rows


async def last_link(address: str, prefix: str) -> str:
    """The last link with this path prefix (e.g. "/invitations/") sent to an address: its last segment."""
    for row in reversed(await messages_to(address)):
        found = re.search(re.escape(prefix) + r"([A-Za-z0-9_.\-]+)", row["body"])
        if found:
            return found.group(1)
    raise AssertionError(f"no {prefix} link was sent to {address}")


class Person:
    """An heir, executor or reviewer logged in with a bearer token."""

    def __init__(self, email: str, token: str, password: str, heir_id: str | None = None):
        self.email, self.token, self.password, self.heir_id = email, token, password, heir_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def invite_heir(client, owner: Owner, email: str, name: str = "李明", **fields) -> str:
    response = await client.post("/v1/me/heirs", json={"name": name, "email": email, "relationship": "son",
                                                       **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def confirmed_heir(client, owner: Owner, email: str, name: str = "李明", password: str = "quiet harbor lantern 77",
                         confirm: bool = True, **fields) -> Person:
    """Owner invites, the heir accepts through the e-mailed link, the owner confirms."""
    heir_id = await invite_heir(client, owner, email, name, **fields)
    token = await last_link(email, "/invitations/")
    response = await client.post(f"/v1/invitations/{token}/accept", json={"password": password})
    assert response.status_code == 201, response.text
    session = response.json()["token"]
    if confirm:
        response = await client.post(f"/v1/me/heirs/{heir_id}/confirm", headers=owner.headers)
        assert response.status_code == 200, response.text
    return Person(email, session, password, heir_id)


async def log_in_person(client, email: str, password: str) -> Person:
    response = await client.post("/v1/otp", json={"email": email, "purpose": "login"})
    assert response.status_code == 202, response.text
    code = await last_code(email)
    response = await client.post("/v1/sessions", json={"email": email, "password": password, "code": code})
    assert response.status_code == 201, response.text
    return Person(email, response.json()["token"], password)


async def reviewer(client, email: str = "reviewer@heirline.example", password: str | None = None) -> Person:
    """`heirline reviewers add`: a new account gets a generated password; an existing one keeps its own."""
    from app.services import accounts

    _, generated = await accounts.add_reviewer(email)
    return await log_in_person(client, email, generated or password)


def image_bytes(fmt: str = "PNG", **save) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 160)).save(out, fmt, **save)
    return out.getvalue()


PNG = image_bytes()


async def upload(client, person, case_id, content=PNG, name="certificate.png", kind="death_certificate",
                 content_type="image/png"):
    return await client.post(f"/v1/claims/{case_id}/evidence", headers=person.headers,
                             files={"file": (name, content, content_type)}, data={"kind": kind})


async def after_window(case_id) -> None:
    """Run the worker's timers as they would run just after the case's veto window."""
    import datetime as dt

    from app.services import legacy
    from app.storage.tables import LegacyCase

    case = await LegacyCase.select(LegacyCase.veto_ends_at).where(LegacyCase.id == case_id).first()
    await legacy.run_timers(case["veto_ends_at"] + dt.timedelta(seconds=1))


async def approved_claim(client, owner: Owner, heir: Person) -> str:
    """The heir claims with evidence, the window passes, a reviewer approves; returns the case id."""
    response = await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=heir.headers)
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    assert (await upload(client, heir, case_id)).status_code == 201
    await after_window(case_id)
    staff = await reviewer(client)
    response = await client.post(f"/v1/review/claims/{case_id}/decision", headers=staff.headers,
                                 json={"decision": "approve", "evidence_verified": True})
    assert response.status_code == 200, response.text
    return case_id


@contextlib.contextmanager
def statements_and_threads(writer) -> Iterator[list[tuple[str, bool]]]:
    """Each statement a SQLite writer connection (``engine._Writer``) runs meanwhile: its text, and
    whether it ran on the writer's own thread (else on an event loop's)."""
    ran: list[tuple[str, bool]] = []
    writer.inner.set_trace_callback(lambda sql: ran.append(
        (sql, threading.current_thread().name.startswith("heirline-sqlite-writer"))))
    try:
        yield ran
    finally:
        writer.inner.set_trace_callback(None)
