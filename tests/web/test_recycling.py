"""New holders and callers: counts only for earlier tenures, unbind requests, CAMARA and reassigned-number checks."""

from __future__ import annotations

import json

import pytest

from app.domain.notices import IDENTIFIER_RECYCLED
from app.services import recycling, streams
from app.storage.tables import Notice, RecyclingQuery, UnbindRequestTask
from tests.support import last_code, make_carrier, platform_id, send_event, sign_up

PHONE = "+8613800138000"
HISTORY = [("2024-03-01", "2024-06-10"), ("2025-01-05", "2025-04-20")]  # (disconnected, reassigned) per past holder


def at(day: str) -> str:
    return f"{day}T08:00:00Z"


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def bind(client, owner, slug):
    body = {"platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": "unbind"}
    assert (await client.post("/v1/me/bindings", json=body, headers=owner.headers)).status_code == 201


@pytest.fixture
async def recycled(client):
    """Two past holders (with their bindings and release cases) and the number now with a third."""
    platforms = {name: await streams.add_platform(name, poll=True) for name in ("WeChat", "Alipay", "Weibo", "Taobao")}
    carrier = await make_carrier()
    first = await sign_up(client, PHONE, email="first.holder@example.com")
    await bind(client, first, "wechat")
    await bind(client, first, "alipay")
    for index, (disconnected, reassigned) in enumerate(HISTORY):
        if index == 1:
            second = await sign_up(client, PHONE, email="second.holder@example.com")
            await bind(client, second, "weibo")
        response = await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=at(disconnected))
        assert response.status_code == 202, response.text
        case_id = response.json()["case_id"]
        if index == 0:  # Alipay finished its unbind; WeChat never answered
            outcome = await client.post(f"/v1/cases/{case_id}/outcomes", json={"result": "unbound"},
                                        headers=auth(platforms["Alipay"].api_token))
            assert outcome.status_code == 201
        assert (await send_event(client, carrier, "number.reassigned", PHONE,
                                 reassigned_at=at(reassigned))).status_code == 202
    return {"platforms": platforms, "carrier": carrier, "first_case": case_id}


async def new_holder(client, phone: str = PHONE) -> dict:
    assert (await client.post("/v1/otp", json={"phone_number": phone, "purpose": "new_holder"})).status_code == 202
    response = await client.post("/v1/sessions", json={"phone_number": phone, "code": await last_code(phone),
                                                       "purpose": "new_holder"})
    assert response.status_code == 201, response.text
    return auth(response.json()["token"])


async def test_new_holder_sees_counts_only(client, recycled):
    holder = await new_holder(client)
    response = await client.get("/v1/me/number-status", headers=holder)
    status = response.json()
    assert status["recycled"] is True and status["earlier_holders"] == 2
    assert status["holder_since"].startswith("2025-04-20")
    assert status["platforms"] == {"finished": 1, "pending": 2}
    for secret in ("WeChat", "wechat", "Alipay", "Weibo", "first.holder", "second.holder", "2024-03-01",
                   "2025-01-05", "2024-06-10", str(recycled["first_case"])):
        assert secret not in response.text
    # a new holder's session is not an owner's, and an owner's is not a new holder's
    assert (await client.get("/v1/me/bindings", headers=holder)).status_code == 403
    assert (await client.get("/v1/me/claims", headers=holder)).status_code == 403
    owner_now = await sign_up(client, PHONE, email="third.holder@example.com")
    assert (await client.get("/v1/me/number-status", headers=owner_now.headers)).status_code == 403
    assert (await client.get("/v1/me/bindings", headers=owner_now.headers)).json() == []  # the tenure starts empty


async def test_unbind_request_reaches_exactly_the_platforms_that_still_owe(client, recycled):
    holder = await new_holder(client)
    before = {r["id"] for r in await Notice.select(Notice.id)}
    response = await client.post("/v1/me/unbind-requests", headers=holder)
    assert response.status_code == 202
    request = response.json()
    assert request["platforms_asked"] == 2 and request["platforms_done"] == 0
    new = await Notice.select(Notice.event, Notice.claims, Notice.stream.platform.name.as_alias("platform")).where(
        Notice.id.not_in(list(before)))
    assert sorted(n["platform"] for n in new) == ["WeChat", "Weibo"]
    assert {n["event"] for n in new} == {IDENTIFIER_RECYCLED}
    claims = json.loads(new[0]["claims"])
    assert claims["sub_id"] == {"format": "phone_number", "phone_number": PHONE} and claims["events"] == {
        IDENTIFIER_RECYCLED: {}}
    again = await client.post("/v1/me/unbind-requests", headers=holder)
    assert again.status_code == 200 and again.json()["id"] == request["id"]
    assert await UnbindRequestTask.count() == 2

    wechat = recycled["platforms"]["WeChat"]
    first_case = json.loads(next(n for n in new if n["platform"] == "WeChat")["claims"])["txn"]
    assert (await client.post(f"/v1/cases/{first_case}/outcomes", json={"result": "unbound"},
                              headers=auth(wechat.api_token))).status_code == 201
    progress = (await client.get(f"/v1/me/unbind-requests/{request['id']}", headers=holder)).json()
    assert progress["platforms_done"] == 1
    other = await new_holder(client, "+8613900139000")
    assert (await client.get(f"/v1/me/unbind-requests/{request['id']}", headers=other)).status_code == 404


async def test_a_number_never_recycled(client):
    holder = await new_holder(client, "+8613900139000")
    status = (await client.get("/v1/me/number-status", headers=holder)).json()
    assert status["recycled"] is False and status["holder_since"] is None
    assert status["platforms"] == {"finished": 0, "pending": 0}
    request = await client.post("/v1/me/unbind-requests", headers=holder)
    assert request.status_code == 202 and request.json()["platforms_asked"] == 0


async def test_harassment_reports_are_counted_per_number(client, recycled):
    holder = await new_holder(client)
    for kind in ("debt_collection", "marketing"):
        response = await client.post("/v1/me/harassment-reports", headers=holder,
                                     json={"kind": kind, "caller_number": "+8613712345678", "occurred_on": "2025-05-02"})
        assert response.status_code == 201, response.text
    assert (await client.post("/v1/me/harassment-reports", headers=holder, json={"kind": "threats"})).status_code == 400
    assert (await client.post("/v1/me/harassment-reports", headers=holder,
                              json={"kind": "other", "occurred_on": "2999-01-01"})).status_code == 400
    assert (await client.post("/v1/me/harassment-reports", headers=holder,
                              json={"kind": "other", "caller_number": "12"})).status_code == 400
    reports = (await client.get("/v1/me/harassment-reports", headers=holder)).json()
    assert reports["reports_for_this_number"] == 2 and len(reports["mine"]) == 2
    assert (await client.get("/v1/me/number-status", headers=holder)).json()["harassment_reports"] == 2
    other = await new_holder(client, "+8613900139000")
    assert (await client.get("/v1/me/harassment-reports", headers=other)).json()["reports_for_this_number"] == 0


async def test_wrong_new_holder_code_is_refused(client):
    await client.post("/v1/otp", json={"phone_number": PHONE, "purpose": "new_holder"})
    response = await client.post("/v1/sessions", json={"phone_number": PHONE, "code": "000000", "purpose": "new_holder"})
    assert response.status_code == 401
    with_password = await client.post("/v1/sessions", json={"phone_number": PHONE, "code": "000000",
                                                             "purpose": "new_holder", "password": "x" * 12})
    assert with_password.status_code == 400


# ---------------------------------------------------------------- CAMARA Number Recycling v0.2


CAMARA = "/number-recycling/v0.2/check"


@pytest.mark.parametrize("specified, expected", [
    ("2024-01-15", True),   # both later holders came after
    ("2024-04-01", True),   # nobody held the number that day (disconnected): the holder changed since
    ("2024-06-10", True),   # the second change came later
    ("2025-04-20", False),  # the change of that very day is not after it
    ("2025-05-01", False),
])
async def test_camara_answers(client, recycled, specified, expected):
    token = auth(recycled["platforms"]["WeChat"].api_token)
    response = await client.post(CAMARA, json={"phoneNumber": PHONE, "specifiedDate": specified},
                                 headers={**token, "x-correlator": "b4333c46-49c0-4f62"})
    assert response.status_code == 200, response.text
    assert response.json() == {"phoneNumberRecycled": expected}
    assert response.headers["x-correlator"] == "b4333c46-49c0-4f62"


@pytest.mark.parametrize("body, status, code", [
    ({"phoneNumber": PHONE}, 400, "INVALID_ARGUMENT"),  # specifiedDate is required
    ({"phoneNumber": PHONE, "specifiedDate": "2024-01-15", "extra": 1}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": "8613800138000", "specifiedDate": "2024-01-15"}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": "+86 138 0013 8000", "specifiedDate": "2024-01-15"}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": PHONE, "specifiedDate": "2024-13-01"}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": PHONE, "specifiedDate": "15/01/2024"}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": PHONE, "specifiedDate": 20240115}, 400, "INVALID_ARGUMENT"),
    ({"phoneNumber": PHONE, "specifiedDate": "2999-01-01"}, 400, "OUT_OF_RANGE"),
    ({"phoneNumber": PHONE, "specifiedDate": "2019-06-01"}, 400, "OUT_OF_RANGE"),  # before the carrier's data
    ({"specifiedDate": "2024-01-15"}, 422, "MISSING_IDENTIFIER"),
    ({"phoneNumber": "+8613700137000", "specifiedDate": "2024-01-15"}, 404, "IDENTIFIER_NOT_FOUND"),
])
async def test_camara_errors(client, recycled, body, status, code):
    response = await client.post(CAMARA, json=body, headers=auth(recycled["platforms"]["WeChat"].api_token))
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status"] == status and error["code"] == code and error["message"]


async def test_camara_authentication_and_three_legged_tokens(client, recycled):
    body = {"phoneNumber": PHONE, "specifiedDate": "2024-01-15"}
    for headers in ({}, auth("hl_platform_nope"), auth("garbage")):
        response = await client.post(CAMARA, json=body, headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHENTICATED"
    broken = await client.post(CAMARA, content=b'{"phoneNumber": ', headers={
        **auth(recycled["platforms"]["WeChat"].api_token), "content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["code"] == "INVALID_ARGUMENT"
    holder = await new_holder(client)  # a 3-legged token: the number comes from the token
    assert (await client.post(CAMARA, json={"specifiedDate": "2024-01-15"}, headers=holder)).json() == {
        "phoneNumberRecycled": True}
    response = await client.post(CAMARA, json=body, headers=holder)
    assert response.status_code == 422 and response.json()["code"] == "UNNECESSARY_IDENTIFIER"
    caller_id, caller_token = await recycling.add_caller("Collections Inc")
    assert (await client.post(CAMARA, json=body, headers=auth(caller_token))).json() == {"phoneNumberRecycled": True}
    carrier = recycled["carrier"]  # the right to know: a carrier asks before selling the number
    assert (await client.post(CAMARA, json=body, headers=auth(carrier.api_token))).status_code == 200
    logged = await RecyclingQuery.select().where(RecyclingQuery.client_id == caller_id)
    assert [(r["api"], r["e164"], r["answer"]) for r in logged] == [("camara", PHONE, "true")]


async def test_registered_and_unknown_numbers_look_the_same(client, recycled):
    await sign_up(client, "+8613900139000")  # an owner registered it; no carrier ever reported it
    platform = auth(recycled["platforms"]["WeChat"].api_token)
    answers = []
    for phone in ("+8613900139000", "+8613700137000"):
        response = await client.post(CAMARA, json={"phoneNumber": phone, "specifiedDate": "2024-01-15"},
                                     headers=platform)
        answers.append((response.status_code, response.json()["code"]))
        response = await client.post("/v1/numbers/recycling:check", headers=platform,
                                     json={"queries": [{"phone_number": phone, "since": "2024-01-15"}]})
        answers.append((response.status_code, response.json()["results"][0]["result"]))
    assert answers[:2] == answers[2:] == [(404, "IDENTIFIER_NOT_FOUND"), (200, "no")]


# ---------------------------------------------------------------- reassigned-numbers batch


async def test_reassigned_numbers_batch(client, recycled):
    caller_id, token = await recycling.add_caller("Acme Collections")
    queries = [
        {"phone_number": PHONE, "since": "2024-02-01"},     # disconnected 2024-03-01 and 2025-01-05: yes
        {"phone_number": PHONE, "since": "2025-01-05"},     # on that very day: yes
        {"phone_number": PHONE, "since": "2025-02-01"},     # none since: no
        {"phone_number": PHONE, "since": "2019-12-31"},     # before the carrier's data: no_data
        {"phone_number": "+8613700137000", "since": "2023-01-01"},  # nothing reported: no
        {"phone_number": "138 0013 8000", "since": "2024-02-01"},   # national form, normalized
    ]
    response = await client.post("/v1/numbers/recycling:check", json={"queries": queries}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert [r["result"] for r in response.json()["results"]] == ["yes", "yes", "no", "no_data", "no", "yes"]
    logged = await RecyclingQuery.select(RecyclingQuery.e164, RecyclingQuery.answer).where(
        RecyclingQuery.client_id == caller_id)
    assert len(logged) == 6 and logged[0] == {"e164": PHONE, "answer": "yes"}


async def test_a_restored_number_was_not_permanently_disconnected(client):
    carrier = await make_carrier()
    await send_event(client, carrier, "number.disconnected", "+8613900139000", disconnected_at=at("2025-02-01"))
    await send_event(client, carrier, "number.restored", "+8613900139000", restored_at=at("2025-02-20"))
    _, token = await recycling.add_caller("Acme Collections")
    response = await client.post("/v1/numbers/recycling:check", headers=auth(token),
                                 json={"queries": [{"phone_number": "+8613900139000", "since": "2025-01-01"}]})
    assert response.json()["results"][0]["result"] == "no"


@pytest.mark.parametrize("body", [
    {"queries": []},
    {"queries": [{"phone_number": PHONE, "since": "2024-02-01"}] * 1001},
    {"queries": [{"phone_number": PHONE, "since": "2999-01-01"}]},
    {"queries": [{"phone_number": PHONE, "since": "yesterday"}]},
    {"queries": [{"phone_number": "12", "since": "2024-02-01"}]},
    {"queries": [{"phone_number": PHONE}]},
    {"queries": [{"phone_number": PHONE, "since": "2024-02-01", "name": "x"}]},
    {"numbers": [PHONE]},
])
async def test_bad_batches_are_refused(client, body):
    caller_id, token = await recycling.add_caller("Acme Collections")
    response = await client.post("/v1/numbers/recycling:check", json=body, headers=auth(token))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await RecyclingQuery.count() == 0


async def test_enumeration_is_throttled(client, owner):
    _, small = await recycling.add_caller("Small Caller", daily_quota=25)
    one = {"queries": [{"phone_number": f"+86138001380{i:02d}", "since": "2024-01-01"} for i in range(20)]}
    assert (await client.post("/v1/numbers/recycling:check", json=one, headers=auth(small))).status_code == 200
    spent = await client.post("/v1/numbers/recycling:check", json=one, headers=auth(small))
    assert spent.status_code == 429 and "quota" in spent.json()["detail"] and spent.headers["retry-after"]
    _, big = await recycling.add_caller("Big Caller", daily_quota=1_000_000)
    codes = []
    for i in range(65):
        response = await client.post("/v1/numbers/recycling:check", headers=auth(big), json={
            "queries": [{"phone_number": f"+861380013{i:04d}", "since": "2024-01-01"}]})
        codes.append(response.status_code)
    assert codes[:60] == [200] * 60 and codes[60:] == [429] * 5
    assert (await client.post("/v1/numbers/recycling:check", json=one, headers=owner.headers)).status_code == 401
