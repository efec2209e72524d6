"""Idempotency-Key on the API's POSTs: a retry gets the first answer and changes nothing."""

from __future__ import annotations

from app.storage.tables import Binding, IdempotencyRecord, OneTimeCode
from tests.support import platform_id


async def binding_body(client, slug="wechat"):
    return {"platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": "unbind"}


async def test_retry_replays_the_first_answer(client, owner):
    headers = {**owner.headers, "Idempotency-Key": "add-wechat-1"}
    body = await binding_body(client)
    first = await client.post("/v1/me/bindings", json=body, headers=headers)
    second = await client.post("/v1/me/bindings", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await Binding.count() == 1


async def test_same_key_for_a_different_request_conflicts(client, owner):
    headers = {**owner.headers, "Idempotency-Key": "k"}
    await client.post("/v1/me/bindings", json=await binding_body(client), headers=headers)
    response = await client.post("/v1/me/bindings", json=await binding_body(client, "alipay"), headers=headers)
    assert response.status_code == 409
    assert response.json()["err"] == "conflict"
    assert await Binding.count() == 1


async def test_keys_are_scoped_to_the_caller(client, owner, other_owner):
    body = await binding_body(client)
    await client.post("/v1/me/bindings", json=body, headers={**owner.headers, "Idempotency-Key": "same"})
    response = await client.post("/v1/me/bindings", json=body, headers={**other_owner.headers, "Idempotency-Key": "same"})
    assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    assert await Binding.count() == 2


async def test_a_refused_request_is_replayed_as_refused(client, owner):
    headers = {**owner.headers, "Idempotency-Key": "bad"}
    body = {**await binding_body(client), "disposition": "sell"}
    first = await client.post("/v1/me/bindings", json=body, headers=headers)
    second = await client.post("/v1/me/bindings", json=body, headers=headers)
    assert first.status_code == second.status_code == 400
    assert await Binding.count() == 0


async def test_code_requests_are_not_sent_twice(client):
    body = {"phone_number": "+8613800138000", "purpose": "signup"}
    for _ in range(2):
        response = await client.post("/v1/otp", json=body, headers={"Idempotency-Key": "otp-1"})
        assert response.status_code == 202
    assert await OneTimeCode.count() == 1


async def test_bad_key_is_refused(client, owner):
    response = await client.post("/v1/me/bindings", json=await binding_body(client),
                                 headers={**owner.headers, "Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert await Binding.count() == 0


async def test_credential_answers_are_never_stored(client, owner):
    await client.post("/v1/sessions", json={"phone_number": owner.phone, "password": owner.password, "code": "123456"},
                      headers={"Idempotency-Key": "login-1"})
    assert await IdempotencyRecord.count() == 0
