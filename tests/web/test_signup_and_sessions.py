"""Sign-up, login with two factors, logout, and every bad input on the way."""

from __future__ import annotations

import datetime as dt

import pytest

from app.storage.tables import AuditEvent, OneTimeCode, Owner, OwnerSession
from tests.support import last_code, sign_up

PHONE = "+8613800138000"


async def request_code(client, phone=PHONE, purpose="signup"):
    return await client.post("/v1/otp", json={"phone_number": phone, "purpose": purpose})


async def test_sign_up_with_code_password_and_email(client):
    response = await request_code(client, "138 0013 8000")  # national, spaced: normalized to E.164
    assert response.status_code == 202
    code = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "correct horse battery", "email": "li@example.com"})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    me = await client.get("/v1/me/contacts", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert [c["address"] for c in me.json()] == ["li@example.com"]
    assert await Owner.count() == 1


@pytest.mark.parametrize("phone", ["12345", "+86 10 6552 9988", "not a number", "+999123456789", "+1 202 555 0", ""])
async def test_invalid_or_foreign_format_numbers_are_refused(client, phone):
    response = await request_code(client, phone)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["err"] == "invalid_request"
    assert await OneTimeCode.count() == 0


async def test_us_number_in_e164_is_accepted(client):
    assert (await request_code(client, "+1 415 555 2671")).status_code == 202
    assert await last_code("+14155552671")


async def test_wrong_code_is_refused_and_nothing_is_created(client):
    await request_code(client)
    code = await last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": wrong, "password": "correct horse battery", "email": "li@example.com"})
    assert response.status_code == 400
    assert response.json()["field"] == "code"
    assert await Owner.count() == 0


async def test_expired_code_is_refused(client):
    await request_code(client)
    code = await last_code(PHONE)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    await OneTimeCode.update({OneTimeCode.expires_at: past}, force=True)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "correct horse battery", "email": "li@example.com"})
    assert response.status_code == 400
    assert await Owner.count() == 0


async def test_code_is_single_use(client):
    owner = await sign_up(client, PHONE)
    code = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "another fine password", "email": "x@example.com"})
    assert response.status_code == 400
    assert await Owner.count() == 1
    assert owner.token


async def test_code_dies_after_five_wrong_tries(client):
    await request_code(client)
    code = await last_code(PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        await client.post("/v1/owners", json={
            "phone_number": PHONE, "code": wrong, "password": "correct horse battery", "email": "a@example.com"})
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "correct horse battery", "email": "a@example.com"})
    assert response.status_code == 400
    assert await Owner.count() == 0


async def test_a_new_code_replaces_the_old_one(client):
    from app.storage.tables import RateEvent

    await request_code(client, purpose="signup")
    first = await last_code(PHONE)
    second = first
    while second == first:  # two random codes may coincide: ask again until they differ
        await OneTimeCode.update({OneTimeCode.created_at: dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)},
                                 force=True)
        await RateEvent.delete(force=True)  # step past the 30-second spacing
        await request_code(client, purpose="signup")
        second = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": first, "password": "correct horse battery", "email": "a@example.com"})
    assert response.status_code == 400
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": second, "password": "correct horse battery", "email": "a@example.com"})
    assert response.status_code == 201


@pytest.mark.parametrize("password", ["short", "1234567890", "aaaaaaaaaaaa", "my13800138000pw", "lihua-rocks-1"])
async def test_weak_passwords_are_refused(client, password):
    await request_code(client)
    code = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": password, "email": "lihua@example.com"})
    assert response.status_code == 400
    assert response.json()["field"] == "password"
    assert await Owner.count() == 0
    # the code was not spent on a request that failed validation
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "correct horse battery", "email": "lihua@example.com"})
    assert response.status_code == 201


async def test_invalid_email_is_refused(client):
    await request_code(client)
    code = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "correct horse battery", "email": "no-at-sign"})
    assert response.status_code == 400
    assert response.json()["field"] == "email"


async def test_second_sign_up_on_the_same_tenure_conflicts(client):
    await sign_up(client, PHONE)
    from app.storage.tables import RateEvent

    await RateEvent.delete(force=True)
    await request_code(client)
    code = await last_code(PHONE)
    response = await client.post("/v1/owners", json={
        "phone_number": PHONE, "code": code, "password": "another fine password", "email": "b@example.com"})
    assert response.status_code == 409
    assert await Owner.count() == 1


async def test_unknown_purpose_and_unknown_fields_are_refused(client):
    response = await client.post("/v1/otp", json={"phone_number": PHONE, "purpose": "steal"})
    assert response.status_code == 400
    response = await client.post("/v1/otp", json={"phone_number": PHONE, "purpose": "signup", "admin": True})
    assert response.status_code == 400
    assert await OneTimeCode.count() == 0


async def test_malformed_json_is_a_clear_400(client):
    response = await client.post("/v1/otp", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["err"] == "invalid_request" and "Traceback" not in response.text


async def test_oversized_body_is_refused(client):
    response = await client.post("/v1/otp", content=b'{"phone_number":"' + b"1" * 200_000 + b'"}',
                                 headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["err"] == "invalid_request"


async def test_code_requests_are_rate_limited_per_number(client):
    from app.storage.tables import RateEvent

    statuses = []
    for _ in range(7):
        statuses.append((await request_code(client, purpose="login")).status_code)
        await RateEvent.delete().where(RateEvent.bucket.like("otp:number:spacing:%"))
    assert statuses[:5] == [202] * 5
    assert statuses[5] == 429
    limited = await request_code(client, purpose="login")
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["err"] == "rate_limited"


async def test_second_code_within_thirty_seconds_is_refused(client):
    assert (await request_code(client)).status_code == 202
    assert (await request_code(client)).status_code == 429


async def log_in(client, owner, password=None):
    from app.storage.tables import RateEvent

    await RateEvent.delete().where(RateEvent.bucket.like("otp:%"))
    assert (await request_code(client, owner.phone, "login")).status_code == 202
    code = await last_code(owner.phone)
    return await client.post("/v1/sessions", json={
        "phone_number": owner.phone, "password": password or owner.password, "code": code})


async def test_log_in_with_password_and_code_then_log_out(client, owner):
    response = await log_in(client, owner)
    assert response.status_code == 201
    token = response.json()["token"]
    assert token != owner.token  # a fresh token at every login
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/me/bindings", headers=headers)).status_code == 200
    assert (await client.delete("/v1/sessions/current", headers=headers)).status_code == 204
    assert (await client.get("/v1/me/bindings", headers=headers)).status_code == 401
    # the other session is untouched
    assert (await client.get("/v1/me/bindings", headers=owner.headers)).status_code == 200
    row = await OwnerSession.select().where(OwnerSession.revoked_at.is_not_null()).first()
    assert row is not None and len(row["token_hash"]) == 64 and row["token_hash"] != token


async def test_wrong_password_or_code_fails_alike(client, owner):
    wrong_password = await log_in(client, owner, password="not the password at all")
    assert wrong_password.status_code == 401
    code = await last_code(owner.phone)
    wrong_code = await client.post("/v1/sessions", json={
        "phone_number": owner.phone, "password": owner.password, "code": "000000" if code != "000000" else "111111"})
    assert wrong_code.status_code == 401
    assert wrong_password.json()["detail"] == wrong_code.json()["detail"]
    unknown = await client.post("/v1/sessions", json={
        "phone_number": "+8613700137000", "password": owner.password, "code": "123456"})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == wrong_code.json()["detail"]
    failures = await AuditEvent.count().where(AuditEvent.action == "session:login:failure")
    assert failures == 2


async def test_login_attempts_are_rate_limited_per_number(client, owner):
    statuses = []
    for _ in range(11):
        response = await client.post("/v1/sessions", json={
            "phone_number": owner.phone, "password": "wrong password here", "code": "123456"})
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429


async def test_expired_session_is_refused(client, owner):
    await OwnerSession.update(
        {OwnerSession.expires_at: dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)}, force=True)
    assert (await client.get("/v1/me/bindings", headers=owner.headers)).status_code == 401


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer nonsense", "Basic abc", "Bearer " + "x" * 500])
async def test_bad_tokens_are_refused(client, owner, header):
    response = await client.get("/v1/me/bindings", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json()["err"] == "authentication_failed"


async def test_correlator_is_echoed(client):
    response = await client.get("/healthz", headers={"x-correlator": "abc-123"})
    assert response.headers["x-correlator"] == "abc-123"
