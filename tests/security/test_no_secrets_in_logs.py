"""Full journeys with every log record captured: no password, token, code, secret or link credential appears."""

from __future__ import annotations

import logging
import re

from app.services import streams
from app.web.logs import redact
from tests.support import (
    approved_claim, confirmed_heir, last_code, last_link, make_carrier, messages_to, send_event, sign_up,
)


async def test_journeys_leave_no_secret_in_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    owner = await sign_up(client, "+8613800138000", password="correct horse battery")
    await client.post("/v1/otp", json={"phone_number": owner.phone, "purpose": "login"})
    code = await last_code(owner.phone)
    session = (await client.post("/v1/sessions", json={"phone_number": owner.phone, "password": owner.password,
                                                       "code": code})).json()["token"]
    await client.post("/v1/sessions", json={"phone_number": owner.phone, "password": "wrong password!", "code": "000000"})
    heir = await confirmed_heir(client, owner, "heir@example.com", password="quiet harbor lantern 77")
    invitation = await last_link("heir@example.com", "/invitations/")
    await client.get(f"/v1/invitations/{invitation}")
    await approved_claim(client, owner, heir)
    carrier = await make_carrier()
    platform = await streams.add_platform("WeChat", poll=True)
    await send_event(client, carrier, "number.suspended", owner.phone)
    await client.post(f"/ssf/poll/{platform.stream_id}", json={"returnImmediately": True},
                      headers={"Authorization": f"Bearer {platform.api_token}"})
    veto_links = [m["body"] for m in await messages_to("owner8000@example.com") if "/veto/" in m["body"]]

    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # httpx: the test's own client
    text = "\n".join(record.getMessage() + " " + str(record.__dict__.get("exc_text") or "") for record in server)
    assert any(r.name.startswith("heirline") for r in server)  # the journeys did log
    secrets = [owner.password, "quiet harbor lantern 77", "wrong password!", session, owner.token, heir.token,
               code, invitation, carrier.webhook_secret, carrier.api_token, platform.api_token]
    secrets += [re.search(r"/veto/(\S+)", body).group(1) for body in veto_links]
    leaked = [(s[:12], [line[:300] for line in text.splitlines() if s in line][:2]) for s in secrets if s and s in text]
    assert leaked == []


def test_access_log_lines_are_redacted():
    line = '127.0.0.1:5000 - "GET /veto/4f1c.abcDEF123 HTTP/1.1" 200'
    assert "abcDEF123" not in redact(line) and "/veto/[redacted]" in redact(line)
    assert redact("POST /v1/invitations/tok_123/accept") == "POST /v1/invitations/[redacted]/accept"
