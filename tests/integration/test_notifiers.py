"""Notifications through a real SMTP server, a real HTTP SMS gateway, and the built-in outbox."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller

from app.notify import DeliveryFailed, Message
from app.notify.outbox import OutboxNotifier
from app.notify.router import ChannelRouter
from app.notify.smtp import SmtpNotifier
from app.notify.sms import SmsGatewayNotifier
from tests.support import free_port


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


async def test_email_reaches_a_real_smtp_server(smtp_server):
    controller, inbox = smtp_server
    notifier = SmtpNotifier(f"smtp://127.0.0.1:{controller.port}", "Heirline <no-reply@heirline.test>")
    await notifier.send(Message("heir@example.com", "email", "您好 hello", "正文 body"))
    assert len(inbox.messages) == 1
    envelope = inbox.messages[0]
    assert envelope.rcpt_tos == ["heir@example.com"]
    text = envelope.content.decode()
    assert "no-reply@heirline.test" in text


async def test_smtp_server_down_is_a_delivery_failure():
    notifier = SmtpNotifier(f"smtp://127.0.0.1:{free_port()}", "x@heirline.test", timeout=2)
    with pytest.raises(DeliveryFailed):
        await notifier.send(Message("a@example.com", "email", "s", "b"))


class Gateway(BaseHTTPRequestHandler):
    received: list = []
    status = 202

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        Gateway.received.append((self.headers.get("authorization"), json.loads(body)))
        self.send_response(Gateway.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sms_gateway():
    Gateway.received = []
    Gateway.status = 202
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/send"
    server.shutdown()


async def test_sms_goes_to_the_http_gateway(sms_gateway):
    await SmsGatewayNotifier(sms_gateway, "gw-token").send(Message("+8613800138000", "sms", "code", "验证码 123456"))
    assert Gateway.received == [("Bearer gw-token", {"to": "+8613800138000", "text": "验证码 123456"})]


async def test_gateway_refusal_is_a_delivery_failure(sms_gateway):
    Gateway.status = 500
    with pytest.raises(DeliveryFailed):
        await SmsGatewayNotifier(sms_gateway).send(Message("+8613800138000", "sms", "code", "x"))


async def test_router_sends_by_channel_and_keeps_the_rest_in_the_outbox(db, smtp_server, sms_gateway, cli_env):
    controller, inbox = smtp_server
    router = ChannelRouter({"email": SmtpNotifier(f"smtp://127.0.0.1:{controller.port}", "h@heirline.test")},
                           OutboxNotifier())
    await router.send(Message("owner@example.com", "email", "alert", "your number was suspended"))
    await router.send(Message("+8613800138000", "sms", "code", "验证码 654321"))
    assert len(inbox.messages) == 1
    shown = subprocess.run([sys.executable, "-m", "app.cli", "outbox", "--json"], env=cli_env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    messages = json.loads(shown.stdout)
    assert [(m["to"], m["channel"], m["body"]) for m in messages] == [("+8613800138000", "sms", "验证码 654321")]
    assert set(messages[0]) == {"to", "channel", "subject", "body", "created_at"}
    filtered = subprocess.run([sys.executable, "-m", "app.cli", "outbox", "--to", "13800138000", "--json"],
                              env=cli_env, capture_output=True, text=True, timeout=60)
    assert len(json.loads(filtered.stdout)) == 1


async def test_one_time_codes_use_the_configured_gateway(client, sms_gateway, monkeypatch):
    from app.services import codes

    monkeypatch.setattr(codes, "notifier", lambda: ChannelRouter({"sms": SmsGatewayNotifier(sms_gateway)},
                                                                 OutboxNotifier()))
    response = await client.post("/v1/otp", json={"phone_number": "+8613800138000", "purpose": "signup"})
    assert response.status_code == 202
    assert Gateway.received[0][1]["to"] == "+8613800138000"
    assert any(ch.isdigit() for ch in Gateway.received[0][1]["text"])


async def test_gateway_down_during_a_code_request_is_a_503(client, sms_gateway, monkeypatch):
    from app.services import codes

    Gateway.status = 500
    monkeypatch.setattr(codes, "notifier", lambda: ChannelRouter({"sms": SmsGatewayNotifier(sms_gateway)},
                                                                 OutboxNotifier()))
    response = await client.post("/v1/otp", json={"phone_number": "+8613800138000", "purpose": "signup"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert response.json()["err"] == "temporarily_unavailable"


async def _outbox() -> dict[str, dict]:
    from app.storage.tables import OutboxMessage

    return {m["channel"]: m for m in await OutboxMessage.select()}


async def _due_now(channel: str) -> None:
    """As if the message's next attempt (or its sender's lease) had come."""
    import datetime as dt

    from app.storage.tables import OutboxMessage

    await OutboxMessage.update({OutboxMessage.next_attempt_at: dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)}
                               ).where(OutboxMessage.channel == channel)


async def test_messages_go_out_from_the_outbox_and_a_refusal_is_retried_later(db, smtp_server, sms_gateway):
    from app.notify import router as routing

    controller, inbox = smtp_server
    router = ChannelRouter({"email": SmtpNotifier(f"smtp://127.0.0.1:{controller.port}", "h@heirline.test"),
                            "sms": SmsGatewayNotifier(sms_gateway)}, OutboxNotifier())
    await router.keep([Message("owner@example.com", "email", "alert", "您的号码已停机 link-secret"),
                           Message("+8613800138000", "sms", "alert", "停机 link-secret")])
    assert inbox.messages == [] and Gateway.received == []  # written, not yet sent
    Gateway.status = 500
    assert await router.deliver_due() == 2
    assert [m.rcpt_tos for m in inbox.messages] == [["owner@example.com"]]
    rows = await _outbox()
    assert rows["email"]["status"] == "sent" and rows["email"]["body"] == ""  # no link secret left behind
    sms = rows["sms"]
    assert (sms["status"], sms["attempts"], sms["body"]) == ("pending", 1, "停机 link-secret")
    assert "500" in sms["last_error"]
    waited = (sms["next_attempt_at"] - sms["created_at"]).total_seconds()
    assert routing.FIRST_RETRY.total_seconds() - 5 < waited < routing.FIRST_RETRY.total_seconds() + 30
    assert await router.deliver_due() == 0  # not due before its time

    Gateway.status = 202
    await _due_now("sms")
    assert await router.deliver_due() == 1
    assert Gateway.received[-1][1] == {"to": "+8613800138000", "text": "停机 link-secret"}
    assert (await _outbox())["sms"]["status"] == "sent"
    assert await router.deliver_due() == 0  # sent once


async def test_a_message_is_failed_after_its_last_attempt_and_a_stopped_senders_claim_frees_up(db, sms_gateway):
    from app.notify import router as routing
    from app.storage.tables import OutboxMessage

    router = ChannelRouter({"sms": SmsGatewayNotifier(sms_gateway)}, OutboxNotifier())
    await router.keep([Message("+8613800138000", "sms", "alert", "停机")])
    await OutboxMessage.update({OutboxMessage.attempts: routing.ATTEMPTS - 1}).where(OutboxMessage.channel == "sms")
    Gateway.status = 500
    assert await router.deliver_due() == 1
    assert ((await _outbox())["sms"]["status"], (await _outbox())["sms"]["attempts"]) == ("failed", routing.ATTEMPTS)
    assert await router.deliver_due() == 0

    # a sender that stopped after claiming: the message stays "sending" until its lease runs out
    await OutboxMessage.update({OutboxMessage.status: "pending", OutboxMessage.attempts: 0}).where(
        OutboxMessage.channel == "sms")
    await _due_now("sms")
    from app.notify import outbox

    assert len(await outbox.claim(10, routing.LEASE)) == 1  # claimed, never sent
    assert await router.deliver_due() == 0  # under its lease
    Gateway.status = 202
    await _due_now("sms")
    assert await router.deliver_due() == 1
    assert (await _outbox())["sms"]["status"] == "sent" and len(Gateway.received) == 2  # refused once, then sent


async def test_the_worker_sends_the_outbox(db, smtp_server, monkeypatch):
    import asyncio

    from app.delivery import worker

    controller, inbox = smtp_server
    router = ChannelRouter({"email": SmtpNotifier(f"smtp://127.0.0.1:{controller.port}", "h@heirline.test")},
                           OutboxNotifier())
    monkeypatch.setattr(worker, "notifier", lambda: router)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.send_messages(stop, every=0.05))
    await router.keep([Message("owner@example.com", "email", "alert", "body")])
    for _ in range(200):
        if inbox.messages:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert [m.rcpt_tos for m in inbox.messages] == [["owner@example.com"]]
    assert (await _outbox())["email"]["status"] == "sent"
