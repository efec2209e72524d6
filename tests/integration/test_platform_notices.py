"""Platform notices end to end: SETs verified by an independent JOSE library, real local receivers,
poll delivery, Standard Webhooks, outcomes, failures, and workers that die or run side by side."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from standardwebhooks import Webhook

from app.delivery import guard, worker
from app.services import streams
from app.settings import get_settings
from app.storage.tables import Notice, ReleaseCase, ReleaseTask, Stream
from tests.support import approved_claim, confirmed_heir, make_carrier, platform_id, send_event, statements_and_threads
from tests.support_receivers import Receiver

PHONE = "+8613800138000"
ISSUER = get_settings().issuer
DEACTIVATED = f"{ISSUER}/secevent/event-type/identifier-deactivated"
HANDOVER = f"{ISSUER}/secevent/event-type/account-handover-requested"


@pytest.fixture(autouse=True)
def quick_timeouts(monkeypatch):
    monkeypatch.setattr(worker, "TIMEOUT_SECONDS", 2)


@pytest.fixture
async def carrier(db):
    return await make_carrier()


def days_ago(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


async def bind(client, owner, slug, disposition="unbind", heir_id=None):
    response = await client.post("/v1/me/bindings", headers=owner.headers, json={
        "platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": disposition,
        "heir_id": heir_id})
    assert response.status_code == 201, response.text


async def verify_set(client, token: str) -> tuple[dict, dict]:
    """Verify a SET with joserfc against the JWKS we publish, as a platform would."""
    keys = KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())
    decoded = jose_jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    return decoded.header, decoded.claims


def token_auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_disconnection_reaches_push_poll_and_webhook_platforms(client, carrier, owner):
    heir = await confirmed_heir(client, owner, "liming@example.com")
    await bind(client, owner, "wechat", "handover", heir.heir_id)
    await bind(client, owner, "alipay", "unbind")
    await bind(client, owner, "weibo", "memorialize")
    await approved_claim(client, owner, heir)  # the owner died; the heirs then cancel the line
    with Receiver("ok") as push, Receiver("ok200") as hooks:
        wechat = await streams.add_platform("WeChat", push_url=push.url)
        alipay = await streams.add_platform("Alipay", poll=True)
        weibo = await streams.add_platform("Weibo", webhook_url=hooks.url)
        response = await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(100))
        case_id = response.json()["case_id"]
        assert await Notice.count() == 3  # written with the case, before any delivery
        await worker.run_until_idle()

        # push: a SET per RFC 8935, verified independently
        [(headers, body)] = push.requests
        assert headers["content-type"] == "application/secevent+jwt"
        header, claims = await verify_set(client, body.decode())
        assert header["typ"] == "secevent+jwt" and header["alg"] == "RS256" and header["kid"]
        assert claims["iss"] == ISSUER and claims["aud"] == str(wechat.id) and claims["txn"] == case_id
        assert claims["sub_id"] == {"format": "phone_number", "phone_number": PHONE}
        assert "sub" not in claims and "exp" not in claims and len(claims["events"]) == 1
        event = claims["events"][HANDOVER]
        assert event["transferee"] == {"format": "email", "email": "liming@example.com"}
        assert event["requested_action"] == "handover" and event["case_id"] == case_id

        # Standard Webhooks: verified with the secret the platform was given
        [(headers, body)] = hooks.requests
        message = Webhook(weibo.webhook_secret).verify(body, headers)
        assert message["type"] == "phone_number.deactivated"
        assert message["data"]["requested_action"] == "memorialize" and message["data"]["phone_number"] == PHONE

    # poll (RFC 8936): the SET is returned until acknowledged, and never after
    url = f"/ssf/poll/{alipay.stream_id}"
    first = (await client.post(url, json={"returnImmediately": True}, headers=token_auth(alipay.api_token))).json()
    [(jti, token)] = first["sets"].items()
    header, claims = await verify_set(client, token)
    assert claims["jti"] == jti and claims["aud"] == str(alipay.id)
    assert claims["events"][DEACTIVATED]["requested_action"] == "unbind"
    again = (await client.post(url, json={"returnImmediately": True}, headers=token_auth(alipay.api_token))).json()
    assert again["sets"] == {jti: token}
    acked = (await client.post(url, json={"ack": [jti], "returnImmediately": True},
                               headers=token_auth(alipay.api_token))).json()
    assert acked == {"sets": {}, "moreAvailable": False}
    statuses = {r["status"] for r in await ReleaseTask.select(ReleaseTask.status)}
    assert statuses == {"notified"}

    # outcomes: clearance turns clear only after the last one
    carrier_auth = token_auth(carrier.api_token)
    for creds, result in [(wechat, "handed_over"), (alipay, "unbound")]:
        response = await client.post(f"/v1/cases/{case_id}/outcomes", json={"result": result},
                                     headers=token_auth(creds.api_token))
        assert response.status_code == 201, response.text
        clearance = (await client.get("/v1/numbers/%2B8613800138000/clearance", headers=carrier_auth)).json()
        assert clearance["status"] == "pending"
    response = await client.post(f"/v1/cases/{case_id}/outcomes", json={"result": "memorialized"},
                                 headers=token_auth(weibo.api_token))
    assert response.status_code == 201
    clearance = (await client.get("/v1/numbers/%2B8613800138000/clearance", headers=carrier_auth)).json()
    assert clearance["status"] == "clear"
    assert clearance["handover"] == {"required": True, "completed": True}
    assert (await ReleaseCase.select(ReleaseCase.status).first())["status"] == "closed"


async def test_outcomes_are_idempotent_and_scoped(client, carrier, owner):
    await bind(client, owner, "wechat")
    with Receiver("ok") as push:
        wechat = await streams.add_platform("WeChat", push_url=push.url)
        other = await streams.add_platform("Some Other App", poll=True)
        case_id = (await send_event(client, carrier, "number.disconnected", PHONE)).json()["case_id"]
        url = f"/v1/cases/{case_id}/outcomes"
        assert (await client.post(url, json={"result": "deferred"}, headers=token_auth(wechat.api_token))).status_code == 201
        assert (await client.post(url, json={"result": "unbound"}, headers=token_auth(wechat.api_token))).status_code == 201
        assert (await client.post(url, json={"result": "unbound"}, headers=token_auth(wechat.api_token))).status_code == 200
        assert (await client.post(url, json={"result": "refused"}, headers=token_auth(wechat.api_token))).status_code == 409
        assert (await client.post(url, json={"result": "unbound"}, headers=token_auth(other.api_token))).status_code == 404
        assert (await client.post(url, json={"result": "sold"}, headers=token_auth(wechat.api_token))).status_code == 400
        assert (await client.post(url, json={"result": "unbound"}, headers=owner.headers)).status_code == 401
        missing = f"/v1/cases/{uuid.uuid4()}/outcomes"
        assert (await client.post(missing, json={"result": "unbound"},
                                  headers=token_auth(wechat.api_token))).status_code == 404


async def test_all_platform_gets_unregistered_numbers_and_no_account_completes(client, carrier):
    renewal = await streams.add_platform("Renewal App", poll=True, all_subjects=True)
    case_id = (await send_event(client, carrier, "number.disconnected", "+8613911112222",
                                disconnected_at=days_ago(95))).json()["case_id"]
    polled = (await client.post(f"/ssf/poll/{renewal.stream_id}", json={"returnImmediately": True},
                                headers=token_auth(renewal.api_token))).json()
    [token] = polled["sets"].values()
    _, claims = await verify_set(client, token)
    assert claims["sub_id"]["phone_number"] == "+8613911112222" and claims["txn"] == case_id
    auth = token_auth(carrier.api_token)
    assert (await client.get("/v1/numbers/%2B8613911112222/clearance", headers=auth)).json()["status"] == "pending"
    response = await client.post(f"/v1/cases/{case_id}/outcomes", json={"result": "no_account"},
                                 headers=token_auth(renewal.api_token))
    assert response.status_code == 201
    assert (await client.get("/v1/numbers/%2B8613911112222/clearance", headers=auth)).json()["status"] == "clear"


async def test_notices_waiting_for_a_poll_stay_out_of_the_claims_until_the_stream_turns_to_push(client, carrier):
    """A platform that polls may leave its notices for days: they wait past every real moment, out of the
    range the worker's claim walks, and come into it, due at once, when the platform turns to push."""
    from app.domain.notices import AWAITING_POLL

    creds = await streams.add_platform("Renewal App", poll=True, all_subjects=True)
    for n in range(3):
        assert (await send_event(client, carrier, "number.disconnected", f"+86139111122{n:02d}")).status_code == 202
    waiting = await Notice.select(Notice.next_attempt_at, Notice.status)
    assert len(waiting) == 3 and all(n["status"] == "pending" and n["next_attempt_at"] == AWAITING_POLL for n in waiting)
    assert await worker.claim(10) == []
    auth = token_auth(creds.api_token)
    with Receiver("ok") as push:
        patched = await client.patch("/ssf/streams", headers=auth, json={
            "stream_id": creds.stream_id, "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": push.url}})
        assert patched.status_code == 200, patched.text
        await worker.run_until_idle()
        assert len(push.requests) == 3
    assert {n["status"] for n in await Notice.select(Notice.status)} == {"delivered"}
    # and back: what is pending when a stream turns to poll waits for the poll again
    await client.patch("/ssf/streams", headers=auth, json={"stream_id": creds.stream_id,
                                                          "delivery": {"method": "urn:ietf:rfc:8936"}})
    await send_event(client, carrier, "number.disconnected", "+8613911112299")
    [pending] = await Notice.select(Notice.next_attempt_at).where(Notice.status == "pending")
    assert pending["next_attempt_at"] == AWAITING_POLL and await worker.claim(10) == []
    polled = (await client.post(f"/ssf/poll/{creds.stream_id}", json={"returnImmediately": True}, headers=auth)).json()
    assert len(polled["sets"]) == 1


async def test_two_polls_at_once_hand_out_the_same_bytes(client, carrier):
    """Both polls read the notice unsigned and sign it; an ES256 signature differs each time it is made, so
    the second poll hands out the first signature stored, never a second one for the same jti."""
    from app.services import notices

    creds = await streams.add_platform("Renewal App", poll=True, all_subjects=True)
    await Stream.update({Stream.signing_alg: "ES256"}).where(Stream.stream_id == creds.stream_id)
    await send_event(client, carrier, "number.disconnected", "+8613911112200")
    rows = await Notice.select().where(Notice.status == "pending")
    assert len(rows) == 1 and rows[0]["token"] is None
    first = await notices.signed_tokens(rows, "ES256")
    second = await notices.signed_tokens(rows, "ES256")  # the same unsigned rows, as a concurrent poll read them
    assert second == first == [(await Notice.select(Notice.token).first())["token"]]


async def test_retry_after_500_delivers_once(client, carrier, owner, monkeypatch):
    await bind(client, owner, "wechat")
    monkeypatch.setattr(worker.rules, "SCHEDULE", [0, 0, 0])
    with Receiver("flaky") as push:
        await streams.add_platform("WeChat", push_url=push.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        await worker.run_until_idle()
        await worker.run_until_idle()
        assert len(push.requests) == 2 and push.bodies[0] == push.bodies[1]  # the same SET, sent again
    notice = await Notice.select().first()
    assert notice["status"] == "delivered" and notice["attempts"] == 2


async def test_a_hanging_endpoint_does_not_hold_up_the_others(client, carrier, owner):
    await bind(client, owner, "wechat")
    await bind(client, owner, "alipay")
    with Receiver("hang", hang_seconds=4) as slow, Receiver("ok") as fast:
        await streams.add_platform("WeChat", push_url=slow.url)
        await streams.add_platform("Alipay", push_url=fast.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(worker.run(stop, idle=0.05))
        while not fast.requests and loop.time() - started < 5:
            await asyncio.sleep(0.05)
        fast_after = loop.time() - started
        stop.set()
        await task
    assert fast.requests and fast_after < 1.5, fast_after
    slow_notice = await Notice.select().where(Notice.stream.platform.slug == "wechat").first()
    assert slow_notice["status"] == "pending" and "Timeout" in slow_notice["last_error"]


async def test_a_hanging_endpoint_does_not_take_the_workers_capacity(client, carrier, monkeypatch):
    """A hanging endpoint's claimed notices fill a worker's capacity (8 here, as many as a stream may have
    claimed); once unanswered for STALLED_AFTER they no longer count, and the healthy endpoint's notices
    go out then instead of after the hanging deliveries time out."""
    monkeypatch.setattr(worker, "TIMEOUT_SECONDS", 4)
    with Receiver("hang", hang_seconds=5) as slow, Receiver("ok") as fast:
        await streams.add_platform("Hanging App", push_url=slow.url, all_subjects=True)
        await disconnect_unregistered(client, carrier, worker.CLAIMED_PER_STREAM)  # claimed first: due first
        await streams.add_platform("Healthy App", push_url=fast.url, all_subjects=True)
        await send_event(client, carrier, "number.disconnected", "+8613900000999")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(worker.run(stop, capacity=worker.CLAIMED_PER_STREAM, idle=0.05))
        while not fast.requests and loop.time() - started < 8:
            await asyncio.sleep(0.05)
        fast_after = loop.time() - started
        stop.set()
        await task
    assert fast.requests and worker.STALLED_AFTER <= fast_after < 3, fast_after  # not after the 4 s timeout
    assert len(slow.requests) >= worker.PER_ENDPOINT


async def test_a_workers_claims_and_records_run_on_its_event_loop(client, carrier):
    """SQLite: the worker's claims and records (a few short statements each round) run on its event
    loop's thread, not one trip each to the writer's thread and back while deliveries wait."""
    from app.storage import engine

    if not engine.is_sqlite():
        pytest.skip("SQLite's writer thread")
    with Receiver("ok") as push:
        await streams.add_platform("Everything App", push_url=push.url, all_subjects=True)
        await disconnect_unregistered(client, carrier, 3)
        # this event loop's writer, which the worker runs on
        with statements_and_threads(await engine._writer_connection()) as ran:
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop, idle=0.05))
            loop = asyncio.get_running_loop()
            started = loop.time()
            while await Notice.count().where(Notice.status == "delivered") < 3 and loop.time() - started < 10:
                await asyncio.sleep(0.05)
            stop.set()
            await task
    claimed = [on_thread for sql, on_thread in ran if sql.startswith('UPDATE "notice" SET "status" = \'sending\'')]
    recorded = [on_thread for sql, on_thread in ran if sql.startswith('UPDATE "notice" SET "status" = \'delivered\'')]
    assert claimed and recorded and not any(claimed + recorded), ran


async def test_400_with_err_is_final_and_recorded(client, carrier, owner):
    await bind(client, owner, "wechat")
    with Receiver("reject") as push:
        await streams.add_platform("WeChat", push_url=push.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        await worker.run_until_idle()
        await worker.run_until_idle()
        assert len(push.requests) == 1
    notice = await Notice.select().first()
    assert notice["status"] == "failed" and notice["last_error"].startswith("invalid_audience")


async def test_410_disables_the_stream(client, carrier, owner):
    await bind(client, owner, "wechat")
    with Receiver("gone") as push:
        creds = await streams.add_platform("WeChat", push_url=push.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        await worker.run_until_idle()
    stream = await Stream.select().first()
    assert stream["status"] == "disabled"
    status = (await client.get(f"/ssf/status?stream_id={creds.stream_id}", headers=token_auth(creds.api_token))).json()
    assert status["status"] == "disabled"
    assert (await Notice.select().first())["status"] == "dead"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data",
                                 "http://10.0.0.8/hook", "http://[::1]/x"])
async def test_private_push_urls_are_refused_at_configuration(client, db, monkeypatch, url):
    plain = dataclasses.replace(get_settings(), outbound_allowlist=())
    monkeypatch.setattr(guard, "get_settings", lambda: plain)
    from app.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        await streams.add_platform("Sneaky", push_url=url)
    creds = await streams.add_platform("Sneaky", poll=True)
    response = await client.patch("/ssf/streams", headers=token_auth(creds.api_token), json={
        "stream_id": creds.stream_id, "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}})
    assert response.status_code == 400


async def test_private_addresses_are_refused_at_delivery(client, carrier, owner, monkeypatch):
    await bind(client, owner, "wechat")
    with Receiver("ok") as push:
        await streams.add_platform("WeChat", push_url=push.url)  # allowed while configuring
        await send_event(client, carrier, "number.disconnected", PHONE)
        plain = dataclasses.replace(get_settings(), outbound_allowlist=())
        monkeypatch.setattr(guard, "get_settings", lambda: plain)  # then the operator drops the allow-list
        await worker.run_until_idle()
        assert push.requests == []
    notice = await Notice.select().first()
    assert notice["status"] == "failed" and "refused" in notice["last_error"]


async def test_restore_sends_cancellation_and_reassignment_sends_recycled(client, carrier, owner):
    await bind(client, owner, "wechat")
    creds = await streams.add_platform("WeChat", poll=True)
    await send_event(client, carrier, "number.disconnected", PHONE)
    await send_event(client, carrier, "number.restored", PHONE)
    await send_event(client, carrier, "number.disconnected", PHONE)
    await send_event(client, carrier, "number.reassigned", PHONE)
    polled = (await client.post(f"/ssf/poll/{creds.stream_id}", json={"returnImmediately": True},
                                headers=token_auth(creds.api_token))).json()
    events = []
    for token in polled["sets"].values():
        _, claims = await verify_set(client, token)
        events.append(next(iter(claims["events"])).rsplit("/", 1)[-1])
    assert sorted(events) == sorted(["identifier-deactivated", "identifier-deactivation-cancelled",
                                     "identifier-deactivated", "identifier-recycled"])


async def test_a_disconnection_restored_in_the_same_group_tells_no_platform(client, carrier, owner):
    """Events of concurrent requests share a group: a case it opens and cancels again was never due."""
    from app.services import carriers, lifecycle

    await bind(client, owner, "wechat")
    await streams.add_platform("WeChat", poll=True)
    events = [lifecycle.event_from_data(kind, {"phone_number": PHONE, f"{when}_at": days_ago(1)}, f"msg_{when}", "CN",
                                        "CN")
              for kind, when in ((lifecycle.NumberEvent.DISCONNECTED, "disconnected"),
                                 (lifecycle.NumberEvent.RESTORED, "restored"))]
    outcomes = await lifecycle.apply(await carriers.get(carrier.id), events)
    assert [o.result for o in outcomes] == ["applied", "applied"]
    [case] = await ReleaseCase.select(ReleaseCase.status, ReleaseCase.notices_at)
    assert case == {"status": "cancelled", "notices_at": None}
    assert await Notice.count() == 0
    assert {t["status"] for t in await ReleaseTask.select(ReleaseTask.status)} == {"cancelled"}


async def test_non_payment_notices_wait_for_the_timer(client, carrier, owner):
    await bind(client, owner, "wechat")
    await streams.add_platform("WeChat", poll=True)
    await send_event(client, carrier, "number.disconnected", PHONE, reason="non_payment")
    assert await Notice.count() == 0
    from app.services import notices

    assert await notices.write_due() == 0
    await ReleaseCase.update({ReleaseCase.notify_at: dt.datetime.now(dt.timezone.utc)}, force=True)
    assert await notices.write_due() == 1
    assert await notices.write_due() == 0  # once


async def test_stream_management(client, db):
    creds = await streams.add_platform("New App")
    auth = token_auth(creds.api_token)
    config = (await client.get("/.well-known/ssf-configuration")).json()
    assert config["spec_version"] == "1_0" and config["issuer"] == ISSUER
    assert (await client.get("/ssf/streams", headers=auth)).json() == []
    created = await client.post("/ssf/streams", headers=auth, json={
        "delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": [DEACTIVATED], "signing_alg": "ES256"})
    assert created.status_code == 201, created.text
    stream = created.json()
    assert stream["aud"] == str(creds.id) and stream["events_delivered"] == [DEACTIVATED]
    assert stream["delivery"]["endpoint_url"].endswith(f"/ssf/poll/{stream['stream_id']}")
    assert (await client.post("/ssf/streams", headers=auth, json={})).status_code == 409
    sid = stream["stream_id"]
    updated = (await client.patch("/ssf/streams", headers=auth, json={"stream_id": sid, "description": "prod"})).json()
    assert updated["description"] == "prod" and updated["events_requested"] == [DEACTIVATED]
    replaced = (await client.put("/ssf/streams", headers=auth, json={
        "stream_id": sid, "delivery": {"method": "urn:ietf:rfc:8936"}, "signing_alg": "ES256"})).json()
    assert replaced["events_requested"] == [] and replaced["description"] == ""  # missing: back to defaults
    assert (await client.post("/ssf/status", headers=auth, json={"stream_id": sid, "status": "paused"})).json()[
        "status"] == "paused"
    subject = {"stream_id": sid, "subject": {"format": "phone_number", "phone_number": "+8613800138000"}}
    assert (await client.post("/ssf/subjects:add", headers=auth, json=subject)).status_code == 200
    assert (await client.post("/ssf/subjects:remove", headers=auth, json=subject)).status_code == 204
    assert (await client.post("/ssf/verify", headers=auth, json={"stream_id": sid, "state": "abc"})).status_code == 204
    polled = (await client.post(f"/ssf/poll/{sid}", headers=auth, json={"returnImmediately": True})).json()
    [token] = polled["sets"].values()
    header, claims = await verify_set(client, token)
    assert header["alg"] == "ES256"
    assert claims["sub_id"] == {"format": "opaque", "id": sid}
    assert claims["events"]["https://schemas.openid.net/secevent/ssf/event-type/verification"] == {"state": "abc"}
    assert (await client.delete(f"/ssf/streams?stream_id={sid}", headers=auth)).status_code == 204
    assert (await client.get(f"/ssf/streams?stream_id={sid}", headers=auth)).status_code == 404


async def test_streams_are_private_to_their_platform(client, db):
    one = await streams.add_platform("App One", poll=True)
    two = await streams.add_platform("App Two", poll=True)
    auth = token_auth(two.api_token)
    assert (await client.get(f"/ssf/streams?stream_id={one.stream_id}", headers=auth)).status_code == 404
    assert (await client.post(f"/ssf/poll/{one.stream_id}", json={}, headers=auth)).status_code == 404
    assert (await client.post("/ssf/status", headers=auth, json={"stream_id": one.stream_id,
                                                                  "status": "disabled"})).status_code == 404
    assert (await client.get("/ssf/streams")).status_code == 401


@pytest.mark.parametrize("body", [{"delivery": {"method": "carrier-pigeon"}}, {"events_requested": "all"},
                                  {"signing_alg": "none"}, {"unknown": 1}, {"delivery": {"method": "urn:ietf:rfc:8935"}}])
async def test_bad_stream_configuration_is_400(client, db, body):
    creds = await streams.add_platform("Config App")
    response = await client.post("/ssf/streams", headers=token_auth(creds.api_token), json=body)
    assert response.status_code == 400
    assert await Stream.count() == 0


async def test_signing_key_rotation_keeps_old_keys_while_needed(client, carrier, owner):
    from app.crypto import sets

    await bind(client, owner, "wechat")
    creds = await streams.add_platform("WeChat", poll=True)
    await send_event(client, carrier, "number.disconnected", PHONE)
    polled = (await client.post(f"/ssf/poll/{creds.stream_id}", json={"returnImmediately": True},
                                headers=token_auth(creds.api_token))).json()
    [(jti, token)] = polled["sets"].items()
    await sets.rotate()
    assert len((await client.get("/.well-known/jwks.json")).json()["keys"]) == 4  # old ones kept a day
    from app.storage.tables import SigningKey

    await SigningKey.update({SigningKey.retired_at: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)}).where(
        SigningKey.retired_at.is_not_null())
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert len(kids) == 3  # two new, and the old RS256 key: it signed a SET not yet acknowledged
    await verify_set(client, token)
    await client.post(f"/ssf/poll/{creds.stream_id}", json={"ack": [jti], "returnImmediately": True},
                      headers=token_auth(creds.api_token))
    assert len((await client.get("/.well-known/jwks.json")).json()["keys"]) == 2


async def test_killed_worker_loses_nothing(client, carrier, owner):
    await bind(client, owner, "wechat")
    with Receiver("ok") as push:
        await streams.add_platform("WeChat", push_url=push.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        claimed = await worker.claim(10)  # a worker takes the notice and dies before sending
        assert len(claimed) == 1
        await worker.run_until_idle()
        assert push.requests == []  # its lease still holds
        await Notice.update({Notice.lease_until: dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)},
                            force=True)
        await worker.run_until_idle()
        assert len(push.requests) == 1
    assert (await Notice.select().first())["status"] == "delivered"


@pytest.mark.skipif(get_settings().is_sqlite, reason="several workers share work on PostgreSQL")
async def test_two_workers_deliver_a_thousand_notices_once(client, carrier, db):
    all_app = None
    with Receiver("ok") as push:
        all_app = await streams.add_platform("Everything App", push_url=push.url, all_subjects=True)
        rows = ["phone_number,disconnected_at,reason,aging_ends_at,line_class"] + [
            f"+86139{i:08d},{days_ago(1)},voluntary,," for i in range(1000)]
        response = await client.post(f"/v1/carriers/{carrier.id}/disconnects:batch", content="\n".join(rows).encode(),
                                     headers={**token_auth(carrier.api_token), "content-type": "text/csv"})
        assert response.json()["applied"] == 1000
        assert await Notice.count() == 1000
        stops = [asyncio.Event(), asyncio.Event()]
        tasks = [asyncio.create_task(worker.run(stop, capacity=32, idle=0.05)) for stop in stops]
        loop = asyncio.get_running_loop()
        started = loop.time()
        while await Notice.count().where(Notice.status == "delivered") < 1000 and loop.time() - started < 120:
            await asyncio.sleep(0.2)
        for stop in stops:
            stop.set()
        await asyncio.gather(*tasks)
        jtis = [json.loads(__import__("base64").urlsafe_b64decode(b.split(b".")[1] + b"==="))["jti"]
                for b in push.bodies]
    assert len(jtis) == 1000 and len(set(jtis)) == 1000
    assert all_app is not None


async def disconnect_unregistered(client, carrier, count: int) -> None:
    rows = ["phone_number,disconnected_at,reason,aging_ends_at,line_class"] + [
        f"+86139{i:08d},{days_ago(1)},voluntary,," for i in range(count)]
    response = await client.post(f"/v1/carriers/{carrier.id}/disconnects:batch", content="\n".join(rows).encode(),
                                 headers={**token_auth(carrier.api_token), "content-type": "text/csv"})
    assert response.json()["applied"] == count


async def test_a_round_signs_many_sets_each_for_its_own_notice(client, carrier):
    """More notices than one signing batch, the batches signed on two threads at once: every SET verifies
    and names its own notice."""
    with Receiver("ok") as push:
        await streams.add_platform("Everything App", push_url=push.url, all_subjects=True)
        await disconnect_unregistered(client, carrier, worker.SIGN_BATCH * 2 + 5)
        await worker.run_until_idle()
        jtis = [(await verify_set(client, body.decode()))[1]["jti"] for body in push.bodies]
    notices = {r["id"].hex for r in await Notice.select(Notice.id).where(Notice.status == "delivered")}
    assert sorted(jtis) == sorted(notices) and len(notices) == worker.SIGN_BATCH * 2 + 5


async def test_two_signing_batches_are_signed_at_the_same_time_on_two_threads(db, monkeypatch):
    """OpenSSL lets go of the interpreter lock while it signs: two batches asked for at once are signed
    side by side on two threads (each signature here waits until the other batch's has started; one
    signing thread would wait for ever), and each caller gets its own batch's tokens back."""
    import threading

    from app.crypto import sets

    together = threading.Barrier(2, timeout=10)
    threads: set[str] = set()

    def encode(claims, key, algorithm, headers):
        threads.add(threading.current_thread().name)
        together.wait()
        return f"signed:{claims['n']}"

    monkeypatch.setattr(sets.jwt, "encode", encode)
    first, second = await asyncio.gather(sets.sign_many([{"n": 1}]), sets.sign_many([{"n": 2}]))
    assert [token for token, _ in first] == ["signed:1"] and [token for token, _ in second] == ["signed:2"]
    assert len(threads) == 2 and all(name.startswith("heirline-sign") for name in threads)


async def test_claims_take_lapsed_leases_first_and_leave_a_busy_stream_alone(client, carrier):
    with Receiver("ok") as push, Receiver("ok") as other:
        busy_app = await streams.add_platform("Busy App", push_url=push.url, all_subjects=True)
        await streams.add_platform("Other App", push_url=other.url, all_subjects=True)
        await streams.add_platform("Polling App", poll=True, all_subjects=True)
        await disconnect_unregistered(client, carrier, 12)
        lapsed = await worker.claim(1)  # a worker took it and died
        await Notice.update({Notice.lease_until: dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)},
                            force=True)
        busy_stream = (await Stream.select(Stream.id).where(Stream.platform == busy_app.id).first())["id"]
        claimed = await worker.claim(100, busy={busy_stream: worker.CLAIMED_PER_STREAM - 1})
        assert claimed[0]["id"] == lapsed[0]["id"] and claimed[0]["attempts"] == 2
        by_stream = {}
        for notice in claimed:
            by_stream.setdefault(notice["stream"], []).append(notice)
        # the busy stream gets one more; the other push stream its limit; the polling stream nothing
        assert len(by_stream) == 2 and len(by_stream.pop(busy_stream, [])) <= 1
        [others] = by_stream.values()
        assert len(others) == worker.CLAIMED_PER_STREAM
        assert all(n["status"] == "sending" and n["lease_until"] > dt.datetime.now(dt.timezone.utc) for n in claimed)
        # what a claim answers is what was stored, read back in the same statement
        stored = {r["id"]: r for r in await Notice.select().where(Notice.id.is_in([n["id"] for n in claimed]))}
        assert all({k: n[k] for k in stored[n["id"]]} == stored[n["id"]] for n in claimed)


async def test_a_late_answer_changes_nothing_once_the_lease_has_passed_on(client, carrier, owner):
    """A worker slower than its lease: meanwhile the notice went back to pending (or on to another worker's
    outcome); the late delivery or failure must not overwrite that, nor mark the task notified."""
    await bind(client, owner, "wechat")
    with Receiver("ok") as push:
        await streams.add_platform("WeChat", push_url=push.url)
        await send_event(client, carrier, "number.disconnected", PHONE)
        [notice] = await worker.claim(10)
        await Notice.update({Notice.status: "pending"}, force=True)
        stream = notice["stream_row"]
        await worker.record_results([worker.Result(notice, stream, worker.Outcome.DELIVERED),
                                     worker.Result(notice, stream, worker.Outcome.REJECTED, "late")])
    stored = await Notice.select().first()
    assert stored["status"] == "pending" and stored["delivered_at"] is None and stored["last_error"] == ""
    assert {r["status"] for r in await ReleaseTask.select(ReleaseTask.status)} == {"pending"}


async def test_a_poll_answers_at_most_the_cap_and_signs_each_set_once(client, carrier, monkeypatch):
    """RFC 8936: maxEvents asks, the transmitter caps; what is not acknowledged comes back byte for byte."""
    from app.services import notices

    monkeypatch.setattr(notices, "POLL_MAX_EVENTS", 3)
    renewal = await streams.add_platform("Renewal App", poll=True, all_subjects=True)
    await disconnect_unregistered(client, carrier, 7)
    url, auth = f"/ssf/poll/{renewal.stream_id}", token_auth(renewal.api_token)

    async def poll(**body):
        response = await client.post(url, json={"returnImmediately": True, **body}, headers=auth)
        assert response.status_code == 200, response.text
        return response.json()

    first = await poll()
    assert len(first["sets"]) == 3 and first["moreAvailable"] is True
    assert len((await poll(maxEvents=2))["sets"]) == 2
    asked_more = await poll(maxEvents=10)
    assert asked_more["sets"] == first["sets"] and asked_more["moreAvailable"] is True  # capped; same bytes
    seen = {}
    for _ in range(5):
        polled = await poll(ack=list(first["sets"]))
        for jti, token in first["sets"].items():
            seen[jti] = token
        first = polled
        if not polled["sets"]:
            break
    assert polled == {"sets": {}, "moreAvailable": False} and len(seen) == 7
    for jti, token in seen.items():
        assert (await verify_set(client, token))[1]["jti"] == jti
    stored = {r["id"].hex: r["token"] for r in await Notice.select(Notice.id, Notice.token)}
    assert stored == seen
