"""The carrier hook: signatures, every answer code, and every transition of the number life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import uuid

import pytest
import standardwebhooks.webhooks as sw

from app.crypto.envelope import seal
from app.settings import get_settings
from app.storage.tables import (
    Carrier, LegacyCase, NumberEvent, NumberHold, OutboxMessage, PhoneNumber, ReleaseCase, ReleaseTask, Tenure,
)
from tests.support import (
    bearer, event_body, make_carrier, platform_id, send_event, sign_up, signed_headers, statements_and_threads,
)

PHONE = "+8613800138000"
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
async def carrier(db):
    return await make_carrier()


@pytest.fixture
async def other_carrier(db):
    return await make_carrier("China Unicom Test", "CN")


async def add_bindings(client, owner):
    heir = (await client.post("/v1/me/heirs", json={"name": "李明", "email": "liming@example.com"},
                              headers=owner.headers)).json()
    for slug, disposition, heir_id in [("wechat", "handover", heir["id"]), ("alipay", "unbind", None),
                                       ("weibo", "memorialize", None), ("taobao", "notify", None)]:
        response = await client.post("/v1/me/bindings", headers=owner.headers, json={
            "platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": disposition,
            "heir_id": heir_id})
        assert response.status_code == 201


# ---------------------------------------------------------------- signatures

def test_official_standard_webhooks_vector():
    at = dt.datetime.fromtimestamp(VECTOR_TS, dt.timezone.utc)
    assert sw.Webhook(VECTOR_SECRET).sign(VECTOR_ID, at, VECTOR_BODY.decode()) == VECTOR_SIG


class _VectorTime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return dt.datetime.fromtimestamp(VECTOR_TS + 10, dt.timezone.utc)


@pytest.mark.parametrize("signature, accepted", [
    (VECTOR_SIG, True),
    ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", False),  # last character changed
    ("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + VECTOR_SIG, True),  # a decoy beside the valid one
    ("v2," + VECTOR_SIG[3:], False),
    ("v1,not base64!", False),
    ("garbage", False),
])
async def test_official_vector_through_our_verification(db, monkeypatch, signature, accepted):
    from app.errors import AuthenticationFailed
    from app.services import carriers

    creds = await make_carrier()
    raw = sw.Webhook(VECTOR_SECRET)._whsecret
    sealed = seal(get_settings().keyring, f"carrier:{creds.id}:webhook-secret", raw)
    await Carrier.update({Carrier.webhook_secret_ct: sealed.blob, Carrier.webhook_secret_kid: sealed.kek_id}).where(
        Carrier.id == creds.id)
    monkeypatch.setattr(sw, "datetime", _VectorTime)
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": signature}
    if accepted:
        assert (await carriers.verify_hook(creds.id, VECTOR_BODY, headers))["id"] == creds.id
    else:
        with pytest.raises(AuthenticationFailed):
            await carriers.verify_hook(creds.id, VECTOR_BODY, headers)


async def test_stale_and_future_timestamps_are_refused(client, carrier):
    body = event_body("number.disconnected", PHONE)
    for offset in (-301, 301):
        at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset)
        response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                                     headers=signed_headers(carrier.webhook_secret, body, at=at))
        assert response.status_code == 401
        assert response.json()["err"] == "authentication_failed"
    assert await ReleaseCase.count() == 0


async def test_another_carriers_secret_is_refused(client, carrier, other_carrier):
    body = event_body("number.disconnected", PHONE)
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                                 headers=signed_headers(other_carrier.webhook_secret, body))
    assert response.status_code == 401
    assert await ReleaseCase.count() == 0 and await PhoneNumber.count() == 0


@pytest.mark.parametrize("change", [
    {"webhook-signature": "v1"}, {"webhook-signature": "v1,%%%"}, {"webhook-timestamp": "yesterday"},
    {"webhook-id": ""},
])
async def test_malformed_signature_headers_are_401(client, carrier, change):
    body = event_body("number.disconnected", PHONE)
    headers = {**signed_headers(carrier.webhook_secret, body), **change}
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body, headers=headers)
    assert response.status_code == 401


async def test_tampered_body_is_refused(client, carrier):
    body = event_body("number.disconnected", PHONE)
    headers = signed_headers(carrier.webhook_secret, body)
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body.replace(b"voluntary", b"fraud"),
                                 headers=headers)
    assert response.status_code == 401


async def test_unknown_carrier_is_404(client, carrier):
    body = event_body("number.disconnected", PHONE)
    response = await client.post(f"/hooks/carriers/{uuid.uuid4()}/v1", content=body,
                                 headers=signed_headers(carrier.webhook_secret, body))
    assert response.status_code == 404


async def test_rotated_secret_keeps_the_old_one_for_the_grace_period(client, carrier):
    from app.services import carriers

    new_secret = await carriers.rotate_secret(carrier.id, dt.timedelta(hours=1))
    for secret in (carrier.webhook_secret, new_secret):
        body = event_body("number.suspended", PHONE, reason="non_payment")
        response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                                     headers=signed_headers(secret, body))
        assert response.status_code == 202, response.text
    await Carrier.update({Carrier.previous_valid_until: dt.datetime.now(dt.timezone.utc)}).where(
        Carrier.id == carrier.id)
    carriers.forget(carrier.id)  # the grace period ended (the cache never outlives it; we jumped ahead)
    body = event_body("number.suspended", PHONE)
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                                 headers=signed_headers(carrier.webhook_secret, body))
    assert response.status_code == 401


async def test_a_burst_after_the_secret_cache_lapses_reads_the_carrier_once(carrier, monkeypatch):
    from app.services import carriers

    reads, real_get = [], carriers.get

    async def slow_get(carrier_id):
        reads.append(carrier_id)
        await asyncio.sleep(0.05)  # the burst arrives while the one read is under way
        return await real_get(carrier_id)

    monkeypatch.setattr(carriers, "get", slow_get)
    carriers.forget(carrier.id)
    bodies = [event_body("number.suspended", f"+86138001380{i:02d}") for i in range(20)]
    verified = await asyncio.gather(*(carriers.verify_hook(carrier.id, body, signed_headers(carrier.webhook_secret, body))
                                      for body in bodies))
    assert [row["id"] for row in verified] == [carrier.id] * 20
    assert len(reads) == 1
    await carriers.verify_hook(carrier.id, bodies[0], signed_headers(carrier.webhook_secret, bodies[0]))
    assert len(reads) == 1  # cached


async def test_a_secret_rotated_while_the_cache_loads_is_not_shadowed_by_the_old_one(carrier, monkeypatch):
    from app.services import carriers

    release, real_get = asyncio.Event(), carriers.get

    async def held_get(carrier_id):
        row = await real_get(carrier_id)  # read before the rotation
        await release.wait()
        return row

    monkeypatch.setattr(carriers, "get", held_get)
    carriers.forget(carrier.id)
    body = event_body("number.suspended", PHONE)
    old_load = asyncio.ensure_future(carriers.verify_hook(carrier.id, body, signed_headers(carrier.webhook_secret, body)))
    await asyncio.sleep(0.01)
    monkeypatch.setattr(carriers, "get", real_get)
    new_secret = await carriers.rotate_secret(carrier.id, dt.timedelta(hours=1))
    release.set()
    await old_load  # the old secret was still good when this request read it
    await carriers.verify_hook(carrier.id, body, signed_headers(new_secret, body))  # not 401 for the cache's life


# ---------------------------------------------------------------- payloads

async def test_malformed_json_is_400(client, carrier):
    body = b'{"type": "number.disconnected", "data": {'
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=body,
                                 headers=signed_headers(carrier.webhook_secret, body))
    assert response.status_code == 400
    assert await NumberEvent.count() == 0


@pytest.mark.parametrize("body", [
    {"type": "number.exploded", "data": {"phone_number": PHONE}},
    {"type": "number.disconnected", "data": {"phone_number": "12345", "disconnected_at": "2026-01-01T00:00:00Z"}},
    {"type": "number.disconnected", "data": {"phone_number": PHONE, "disconnected_at": "last tuesday"}},
    {"type": "number.disconnected", "data": {"phone_number": PHONE, "disconnected_at": "2026-01-01T00:00:00"}},
    {"type": "number.disconnected", "data": {"phone_number": PHONE, "disconnected_at": "2026-01-01T00:00:00Z",
                                             "reason": "bored"}},
    {"type": "number.disconnected", "data": {"phone_number": PHONE, "disconnected_at": "2026-01-01T00:00:00Z",
                                             "aging_ends_at": "2025-01-01T00:00:00Z"}},
    {"type": "number.disconnected", "data": {"phone_number": PHONE, "disconnected_at": "2099-01-01T00:00:00Z"}},
    {"type": "number.ported_out", "data": {"phone_number": PHONE, "ported_at": "2026-01-01T00:00:00Z"}},
    {"type": "number.disconnected", "data": "not an object"},
    ["not", "an", "object"],
])
async def test_bad_payloads_are_400_and_change_nothing(client, carrier, body):
    raw = json.dumps(body).encode()
    response = await client.post(f"/hooks/carriers/{carrier.id}/v1", content=raw,
                                 headers=signed_headers(carrier.webhook_secret, raw))
    assert response.status_code == 400, response.text
    assert await NumberEvent.count() == 0 and await PhoneNumber.count() == 0


# ---------------------------------------------------------------- the life cycle

async def test_disconnection_opens_a_case_with_one_task_per_binding(client, carrier, owner):
    await add_bindings(client, owner)
    response = await send_event(client, carrier, "number.disconnected", PHONE)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "pending" and answer["case_id"]
    case = await ReleaseCase.select().where(ReleaseCase.id == uuid.UUID(answer["case_id"])).first()
    assert case["status"] == "open" and case["jurisdiction"] == "CN"
    assert case["earliest_clear_at"] - case["disconnected_at"] == dt.timedelta(days=90)
    assert case["notify_at"] == case["disconnected_at"]  # voluntary: at once
    tasks = await ReleaseTask.select(ReleaseTask.action, ReleaseTask.status, ReleaseTask.heir).where(
        ReleaseTask.case == case["id"])
    # the holder cancelled the number alive: a handover or memorial becomes an unbind (no legacy case)
    assert sorted(t["action"] for t in tasks) == ["none", "unbind", "unbind", "unbind"]
    assert all(t["status"] == "pending" for t in tasks)
    alerts = await OutboxMessage.select().where((OutboxMessage.channel == "email")
                                                & OutboxMessage.subject.like("%注销%"))
    assert len(alerts) == 1


async def test_replayed_webhook_id_answers_200_with_the_same_body(client, carrier):
    first = await send_event(client, carrier, "number.disconnected", PHONE, webhook_id="msg_same")
    second = await send_event(client, carrier, "number.disconnected", PHONE, webhook_id="msg_same")
    assert first.status_code == 202 and second.status_code == 200
    assert first.json() == second.json()
    assert await ReleaseCase.count() == 1 and await NumberEvent.count() == 1


async def test_same_event_twice_at_the_same_moment_is_applied_once(client, carrier, owner):
    await add_bindings(client, owner)
    body = event_body("number.disconnected", PHONE)
    headers = signed_headers(carrier.webhook_secret, body, webhook_id="msg_twice")
    responses = await asyncio.gather(*[
        client.post(f"/hooks/carriers/{carrier.id}/v1", content=body, headers=headers) for _ in range(2)])
    assert sorted(r.status_code for r in responses) == [200, 202]
    assert responses[0].json() == responses[1].json()
    assert await ReleaseCase.count() == 1 and await ReleaseTask.count() == 4


async def test_two_different_events_for_one_number_at_once_stay_consistent(client, carrier, owner):
    await add_bindings(client, owner)
    responses = await asyncio.gather(
        send_event(client, carrier, "number.disconnected", PHONE),
        send_event(client, carrier, "number.disconnected", PHONE, reason="non_payment"))
    assert sorted(r.status_code for r in responses) == [202, 409]
    assert await ReleaseCase.count() == 1 and await ReleaseTask.count() == 4
    tenure = await Tenure.select().first()
    assert tenure["status"] == "disconnected"


async def test_two_carriers_reporting_a_new_number_at_once_leave_it_with_the_first(carrier, other_carrier, monkeypatch,
                                                                                   caplog):
    """Both batches find the number new and add it; the second's row gives way to the first's (held by
    it), its event is refused, and it neither removes the first's number nor has to start again."""
    from app.services import carriers, lifecycle

    arrived, both = [], asyncio.Event()
    real_insert = lifecycle.insert_rows

    async def insert_when_both_have_looked(table, rows, *args, **kwargs):
        if table is PhoneNumber and rows:
            arrived.append(rows)
            if len(arrived) == 2:
                both.set()
            # PostgreSQL: both read before either inserts; SQLite lets one writer in at a time, so the first waits alone
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both.wait(), 0.5)
        await real_insert(table, rows, *args, **kwargs)

    monkeypatch.setattr(lifecycle, "insert_rows", insert_when_both_have_looked)
    events = [lifecycle.event_from_data(lifecycle.NumberEvent.DISCONNECTED, json.loads(event_body(
        "number.disconnected", PHONE))["data"], f"msg_{n}", "CN", "CN") for n in range(2)]
    reporters = [await carriers.get(c.id) for c in (carrier, other_carrier)]
    with caplog.at_level("INFO", logger="heirline.lifecycle"):
        outcomes = await asyncio.gather(*(lifecycle.apply(c, [e]) for c, e in zip(reporters, events)))
    results = [o.result for [o] in outcomes]
    assert sorted(results) == ["applied", "rejected"]
    first = reporters[results.index("applied")]
    [number] = await PhoneNumber.select(PhoneNumber.carrier).where(PhoneNumber.e164 == PHONE)
    assert number["carrier"] == first["id"]
    assert await ReleaseCase.count() == 1 and await NumberEvent.count() == 1
    assert "concurrent writer" not in caplog.text


async def test_suspension_alerts_the_owner_everywhere_and_unbinds_nothing(client, carrier, owner):
    await add_bindings(client, owner)
    await client.post("/v1/me/contacts", json={"kind": "phone", "address": "13712345678"}, headers=owner.headers)
    response = await send_event(client, carrier, "number.suspended", PHONE, reason="non_payment")
    assert response.status_code == 202
    assert response.json()["case_id"] is None
    assert await ReleaseCase.count() == 0 and await ReleaseTask.count() == 0
    recipients = {m["recipient"] for m in await OutboxMessage.select().where(OutboxMessage.subject.like("%停机%"))}
    assert recipients == {"owner8000@example.com", "+8613712345678", PHONE}
    assert (await Tenure.select().first())["status"] == "suspended"


async def test_an_owner_is_alerted_in_their_own_language(client, carrier, owner):
    from app.storage.tables import Owner

    await Owner.update({Owner.locale: "en"}).where(Owner.id.is_not_null())
    assert (await send_event(client, carrier, "number.disconnected", PHONE)).status_code == 202
    subjects = {m["subject"] for m in await OutboxMessage.select().where(OutboxMessage.recipient == "owner8000@example.com")}
    assert "Your number was cancelled" in subjects and not any("注销" in s for s in subjects)


async def test_an_event_whose_alerts_cannot_be_kept_is_not_acknowledged(client, carrier, owner, monkeypatch):
    """The owner's alerts commit with the event: if they cannot be stored, neither is the event, and the
    carrier's retry (same webhook-id) applies it and alerts the owner then."""
    from app.notify import outbox

    store = outbox.store

    async def broken(messages, routed):
        raise OSError("disk full")

    monkeypatch.setattr(outbox, "store", broken)
    response = await send_event(client, carrier, "number.suspended", PHONE, webhook_id="msg_retry_1", reason="non_payment")
    assert response.status_code == 500
    assert await NumberEvent.count() == 0 and (await Tenure.select().first())["status"] == "active"
    monkeypatch.setattr(outbox, "store", store)
    response = await send_event(client, carrier, "number.suspended", PHONE, webhook_id="msg_retry_1", reason="non_payment")
    assert response.status_code == 202
    assert {m["recipient"] for m in await OutboxMessage.select().where(OutboxMessage.subject.like("%停机%"))} == {
        "owner8000@example.com", PHONE}


async def test_the_hook_does_not_wait_for_a_transport_and_the_alert_waits_in_the_outbox(client, carrier, owner,
                                                                                          monkeypatch):
    """With an SMS gateway configured, the owner's alerts commit with the event as pending messages and
    go out from the outbox (the worker's sender, tested with the notifiers): a slow gateway holds up no
    carrier."""
    from app.notify import DeliveryFailed, router

    calls = []

    class SlowSms:
        async def send(self, message):
            calls.append(message.to)
            await asyncio.sleep(1)
            raise DeliveryFailed("gateway timed out")

    monkeypatch.setattr(router.notifier(), "by_channel", {"sms": SlowSms()})
    response = await send_event(client, carrier, "number.suspended", PHONE, reason="non_payment")
    assert response.status_code == 202
    assert calls == []  # not tried before the answer
    assert (await Tenure.select().first())["status"] == "suspended"
    alerts = await OutboxMessage.select(OutboxMessage.recipient, OutboxMessage.status).where(
        OutboxMessage.subject.like("%停机%"))
    assert {(m["recipient"], m["status"]) for m in alerts} == {("owner8000@example.com", "kept"), (PHONE, "pending")}


async def test_restore_cancels_the_case(client, carrier, owner):
    await add_bindings(client, owner)
    case_id = (await send_event(client, carrier, "number.disconnected", PHONE)).json()["case_id"]
    response = await send_event(client, carrier, "number.restored", PHONE)
    assert response.status_code == 202 and response.json()["case_id"] == case_id
    case = await ReleaseCase.select().first()
    assert case["status"] == "cancelled"
    assert {t["status"] for t in await ReleaseTask.select(ReleaseTask.status)} == {"cancelled"}
    assert (await Tenure.select().first())["status"] == "active"
    # a later disconnection opens a new case
    assert (await send_event(client, carrier, "number.disconnected", PHONE)).status_code == 202
    assert await ReleaseCase.count() == 2


async def test_reassignment_closes_the_tenure_and_the_next_owner_starts_empty(client, carrier, owner):
    await add_bindings(client, owner)
    await send_event(client, carrier, "number.disconnected", PHONE)
    response = await send_event(client, carrier, "number.reassigned", PHONE)
    assert response.status_code == 202
    tenures = await Tenure.select().order_by(Tenure.seq)
    assert [(t["seq"], t["status"], t["ended_at"] is not None) for t in tenures] == [
        (1, "closed", True), (2, "active", False)]
    from app.storage.tables import RateEvent

    await RateEvent.delete(force=True)
    newcomer = await sign_up(client, PHONE, password="a brand new holder")
    assert (await client.get("/v1/me/bindings", headers=newcomer.headers)).json() == []
    assert (await client.get("/v1/me/heirs", headers=newcomer.headers)).json() == []
    assert (await client.get("/v1/me/bindings", headers=owner.headers)).status_code == 200  # old data kept


async def test_reassigned_without_disconnection_is_409(client, carrier, owner):
    response = await send_event(client, carrier, "number.reassigned", PHONE)
    assert response.status_code == 409
    assert response.json()["err"] == "invalid_state"
    assert await NumberEvent.count() == 0


@pytest.mark.parametrize("kind", ["number.restored", "number.reassigned"])
async def test_impossible_first_events_leave_no_trace(client, carrier, kind):
    assert (await send_event(client, carrier, kind, "+8613911112222")).status_code == 409
    assert await PhoneNumber.count() == 0


async def test_port_out_hands_the_number_to_the_new_carrier(client, carrier, other_carrier, owner):
    response = await send_event(client, carrier, "number.ported_out", PHONE, new_carrier="China Unicom Test")
    assert response.status_code == 202
    assert await ReleaseCase.count() == 0
    assert (await send_event(client, carrier, "number.suspended", PHONE)).status_code == 403
    assert (await send_event(client, other_carrier, "number.disconnected", PHONE)).status_code == 202


async def test_number_held_by_another_carrier_is_403(client, carrier, other_carrier):
    assert (await send_event(client, carrier, "number.suspended", PHONE)).status_code == 202
    response = await send_event(client, other_carrier, "number.disconnected", PHONE)
    assert response.status_code == 403
    assert response.json()["err"] == "access_denied"
    assert await ReleaseCase.count() == 0


async def test_deceased_subscriber_opens_a_legacy_case(client, carrier, owner):
    await add_bindings(client, owner)
    response = await send_event(client, carrier, "number.disconnected", PHONE, reason="subscriber_deceased")
    assert response.status_code == 202
    legacy = await LegacyCase.select().first()
    assert legacy["owner"] == uuid.UUID(owner.id) and legacy["source"] == "carrier_event"
    assert str(legacy["release_case"]) == response.json()["case_id"]


async def test_fraud_holds_the_number(client, carrier):
    response = await send_event(client, carrier, "number.disconnected", PHONE, reason="fraud")
    assert response.status_code == 202
    assert response.json()["status"] == "blocked"
    hold = await NumberHold.select().first()
    case = await ReleaseCase.select().first()
    assert hold["blocked_until"] == case["blocked_until"]
    assert hold["blocked_until"] - case["disconnected_at"] == dt.timedelta(days=180)


async def test_non_payment_notices_wait_for_the_grace_period(client, carrier):
    response = await send_event(client, carrier, "number.disconnected", PHONE, reason="non_payment")
    case = await ReleaseCase.select().first()
    assert response.status_code == 202
    assert case["notify_at"] - case["disconnected_at"] == dt.timedelta(days=30)
    assert case["earliest_clear_at"] - case["notify_at"] >= dt.timedelta(days=30)


async def test_every_case_change_is_audited(client, carrier, owner):
    await add_bindings(client, owner)
    await send_event(client, carrier, "number.disconnected", PHONE)
    await send_event(client, carrier, "number.restored", PHONE)
    from app import audit
    from app.storage.tables import AuditEvent

    actions = [r["action"] for r in await AuditEvent.select(AuditEvent.action).order_by(AuditEvent.seq)]
    assert "case:open" in actions and "case:cancel" in actions
    assert (await audit.verify()).ok


async def test_owner_sees_the_number_state_and_each_task(client, carrier, owner):
    await add_bindings(client, owner)
    state = (await client.get("/v1/me/number", headers=owner.headers)).json()
    assert state["status"] == "active" and state["case"] is None
    await send_event(client, carrier, "number.disconnected", PHONE)
    state = (await client.get("/v1/me/number", headers=owner.headers)).json()
    assert state["status"] == "disconnected"
    assert sorted((t["platform_name"], t["action"], t["status"]) for t in state["case"]["tasks"]) == [
        ("Alipay", "unbind", "pending"), ("Taobao", "none", "pending"), ("WeChat", "unbind", "pending"),
        ("Weibo", "unbind", "pending")]  # cancelled by a living holder: nothing is handed over
    assert [t["heir_name"] for t in state["case"]["tasks"] if t["platform_name"] == "WeChat"] == ["李明"]


async def test_events_for_one_number_in_one_group_apply_in_order(client, carrier, owner, monkeypatch):
    """Disconnect, restore and disconnect again arriving together land in one transaction, in order."""
    from app.services import ingest

    await add_bindings(client, owner)
    monkeypatch.setattr(ingest.EVENTS, "max_wait", 0.5)
    kinds = ["number.disconnected", "number.restored", "number.disconnected"]
    responses = []
    for kind in kinds:  # started in order, committed together
        responses.append(asyncio.ensure_future(send_event(client, carrier, kind, PHONE)))
        await asyncio.sleep(0.05)
    responses = await asyncio.gather(*responses)
    assert [r.status_code for r in responses] == [202, 202, 202]
    cases = await ReleaseCase.select().order_by(ReleaseCase.opened_at)
    assert sorted(c["status"] for c in cases) == ["cancelled", "open"]
    tasks = await ReleaseTask.select(ReleaseTask.case, ReleaseTask.status)
    by_case = {c["id"]: c["status"] for c in cases}
    assert sorted((by_case[t["case"]], t["status"]) for t in tasks) == sorted(
        [("cancelled", "cancelled")] * 4 + [("open", "pending")] * 4)
    # clearance answers for the live case, even when both were opened at the same moment (one group)
    [live] = [c["id"] for c in cases if c["status"] == "open"]
    for opened_at in [None, cases[0]["opened_at"]]:
        if opened_at is not None:
            await ReleaseCase.update({ReleaseCase.opened_at: opened_at}).where(
                ReleaseCase.id.is_in([c["id"] for c in cases]))
        answer = (await client.get(f"/v1/numbers/{PHONE.replace('+', '%2B')}/clearance",
                                   headers=bearer(carrier))).json()
        assert (answer["status"], answer["case_id"], answer["tasks"]["pending"]) == ("pending", str(live), 4)


async def test_a_hook_group_runs_its_statements_on_the_event_loop(client, carrier, owner):
    """SQLite: the group's statements run on the event loop's thread, with no trip to the writer's
    thread and back for each while the other processes wait for the writer; only BEGIN and COMMIT,
    which may wait, take the writer's thread."""
    from app.storage import engine

    if not engine.is_sqlite():
        pytest.skip("SQLite's writer thread")
    await add_bindings(client, owner)
    # the app's writer (the test client runs the app on an event loop of its own)
    [writer] = [w for loop, w in engine._writers.items()
                if loop is not asyncio.get_running_loop() and w.path == str(engine.DB.path)]
    with statements_and_threads(writer) as traced:
        response = await send_event(client, carrier, "number.disconnected", PHONE)
    ran = [(sql.split()[0], on_thread) for sql, on_thread in traced]
    assert response.status_code == 202, response.text
    assert ran[0] == ("BEGIN", True) and ran[-1] == ("COMMIT", True)
    assert {verb for verb, _ in ran[1:-1]} >= {"SELECT", "INSERT"}
    assert not [statement for statement in ran[1:-1] if statement[1]]  # none on the writer's thread
