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
