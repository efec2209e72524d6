"""The inventory, heirs and contacts through the JSON API, including other people's ids."""

from __future__ import annotations

import uuid

import pytest

from app.storage.engine import run_sql
from app.storage.tables import AuditEvent, Binding, ContactChannel, Heir
from tests.support import platform_id


async def add_binding(client, who, **fields):
    body = {"platform_id": await platform_id(client, "wechat"), "binding_types": ["login", "payment"],
            "disposition": "unbind"}
    body.update(fields)
    return await client.post("/v1/me/bindings", json=body, headers=who.headers)


async def add_heir(client, who, **fields):
    body = {"name": "李明", "email": "liming@example.com", "relationship": "son"}
    body.update(fields)
    return await client.post("/v1/me/heirs", json=body, headers=who.headers)


async def test_catalog_lists_chinese_and_international_platforms(client):
    platforms = (await client.get("/v1/platforms")).json()
    slugs = {p["slug"] for p in platforms}
    assert {"wechat", "alipay", "google", "whatsapp"} <= slugs
    assert {p["region"] for p in platforms} == {"CN", "INTL"}
    wechat = next(p for p in platforms if p["slug"] == "wechat")
    assert wechat["name_zh"] == "微信"


async def test_add_list_edit_remove_a_binding(client, owner):
    heir = (await add_heir(client, owner)).json()
    response = await add_binding(client, owner, account_hint="wxid_lihua", disposition="handover",
                                 heir_id=heir["id"], instructions="导出聊天记录")
    assert response.status_code == 201, response.text
    binding = response.json()
    assert binding["binding_types"] == ["login", "payment"]
    assert binding["account_hint"] == "wxid_lihua" and binding["instructions"] == "导出聊天记录"
    assert binding["platform"]["slug"] == "wechat"

    listed = (await client.get("/v1/me/bindings", headers=owner.headers)).json()
    assert [b["id"] for b in listed] == [binding["id"]]

    response = await client.patch(f"/v1/me/bindings/{binding['id']}", headers=owner.headers,
                                  json={"disposition": "memorialize", "heir_id": None, "instructions": None})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["disposition"] == "memorialize" and changed["heir_id"] is None
    assert changed["instructions"] is None and changed["account_hint"] == "wxid_lihua"

    assert (await client.delete(f"/v1/me/bindings/{binding['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/v1/me/bindings/{binding['id']}", headers=owner.headers)).status_code == 404
    actions = [e["action"] for e in (await client.get("/v1/me/audit", headers=owner.headers)).json()]
    assert actions[:5] == ["binding:delete", "binding:update", "binding:create", "heir:invite", "heir:add"]


async def test_another_owners_binding_is_404_and_unchanged(client, owner, other_owner):
    binding = (await add_binding(client, owner, account_hint="secret-hint")).json()
    url = f"/v1/me/bindings/{binding['id']}"
    assert (await client.get(url, headers=other_owner.headers)).status_code == 404
    response = await client.patch(url, json={"disposition": "delete"}, headers=other_owner.headers)
    assert response.status_code == 404
    assert (await client.delete(url, headers=other_owner.headers)).status_code == 404
    assert (await client.get("/v1/me/bindings", headers=other_owner.headers)).json() == []
    mine = (await client.get(url, headers=owner.headers)).json()
    assert mine["disposition"] == "unbind" and mine["account_hint"] == "secret-hint"
    assert await Binding.count() == 1


async def test_binding_needs_a_known_platform(client, owner):
    response = await add_binding(client, owner, platform_id=str(uuid.uuid4()))
    assert response.status_code == 400
    assert response.json()["field"] == "platform_id"
    response = await add_binding(client, owner, platform_id="wechat")
    assert response.status_code == 400
    assert await Binding.count() == 0


@pytest.mark.parametrize("fields", [
    {"binding_types": []},
    {"binding_types": ["login", "telepathy"]},
    {"disposition": "sell"},
    {"account_hint": "x" * 201},
    {"instructions": "x" * 4001},
    {"disposition": "handover"},  # a handover without an heir
    {"heir_id": "not-a-uuid"},
    {"unexpected": 1},
])
async def test_bad_binding_input_is_refused(client, owner, fields):
    response = await add_binding(client, owner, **fields)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await Binding.count() == 0


async def test_binding_cannot_name_another_owners_heir(client, owner, other_owner):
    foreign_heir = (await add_heir(client, other_owner)).json()
    response = await add_binding(client, owner, disposition="handover", heir_id=foreign_heir["id"])
    assert response.status_code == 400
    assert await Binding.count() == 0


async def test_bad_patch_changes_nothing(client, owner):
    binding = (await add_binding(client, owner, account_hint="hint")).json()
    url = f"/v1/me/bindings/{binding['id']}"
    response = await client.patch(url, json={"disposition": "handover"}, headers=owner.headers)
    assert response.status_code == 400
    response = await client.patch(url, json={"account_hint": "new", "binding_types": ["bogus"]}, headers=owner.headers)
    assert response.status_code == 400
    assert (await client.get(url, headers=owner.headers)).json()["account_hint"] == "hint"


async def test_encrypted_columns_hold_no_plaintext(client, owner, db):
    await add_binding(client, owner, account_hint="wxid_plainhint", instructions="PLAINTEXT-INSTRUCTIONS 遗言")
    rows = await run_sql("SELECT * FROM binding")
    assert len(rows) == 1
    raw = b"".join(
        bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode() for v in rows[0].values()
    )
    assert b"wxid_plainhint" not in raw and b"PLAINTEXT" not in raw
    assert "遗言".encode() not in raw
    assert bytes(rows[0]["account_hint_ct"])[:1] == b"\x01"
    owner_rows = await run_sql("SELECT data_key, kek_id FROM owner")
    assert len(bytes(owner_rows[0]["data_key"])) == 12 + 32 + 16  # nonce + wrapped key + tag


async def test_ciphertext_moved_to_another_row_does_not_decrypt(client, owner):
    first = (await add_binding(client, owner, account_hint="first")).json()
    second = (await add_binding(client, owner, account_hint="second")).json()
    stolen = await Binding.select(Binding.account_hint_ct).where(Binding.id == uuid.UUID(first["id"])).first()
    await Binding.update({Binding.account_hint_ct: stolen["account_hint_ct"]}).where(
        Binding.id == uuid.UUID(second["id"]))
    response = await client.get(f"/v1/me/bindings/{second['id']}", headers=owner.headers)
    assert response.status_code == 500  # tampered storage is our fault, never shown as data
    assert "first" not in response.text


async def test_heirs_add_list_remove(client, owner, other_owner):
    first = await add_heir(client, owner, is_executor=True, phone_number="13912345678")
    assert first.status_code == 201, first.text
    second = (await add_heir(client, owner, name="王芳", email="wangfang@example.com", relationship="spouse")).json()
    heirs = (await client.get("/v1/me/heirs", headers=owner.headers)).json()
    assert [(h["name"], h["rank"], h["is_executor"]) for h in heirs] == [("李明", 1, True), ("王芳", 2, False)]
    assert heirs[0]["phone_number"] == "+8613912345678"
    assert (await client.get("/v1/me/heirs", headers=other_owner.headers)).json() == []
    assert (await client.delete(f"/v1/me/heirs/{second['id']}", headers=other_owner.headers)).status_code == 404
    assert (await client.delete(f"/v1/me/heirs/{second['id']}", headers=owner.headers)).status_code == 204
    assert [h["name"] for h in (await client.get("/v1/me/heirs", headers=owner.headers)).json()] == ["李明"]
    assert await Heir.count().where(Heir.status == "revoked") == 1  # kept for the record, never shown


@pytest.mark.parametrize("fields", [{"email": "nope"}, {"name": ""}, {"phone_number": "12"}, {"name": "x" * 101}])
async def test_bad_heir_input_is_refused(client, owner, fields):
    response = await add_heir(client, owner, **fields)
    assert response.status_code == 400
    assert await Heir.count() == 0


async def test_heir_named_on_a_binding_can_be_revoked_at_any_time(client, owner):
    heir = (await add_heir(client, owner)).json()
    await add_binding(client, owner, disposition="handover", heir_id=heir["id"])
    response = await client.delete(f"/v1/me/heirs/{heir['id']}", headers=owner.headers)
    assert response.status_code == 204
    assert (await Heir.select(Heir.status).where(Heir.id == heir["id"]).first())["status"] == "revoked"
    assert (await client.delete(f"/v1/me/heirs/{heir['id']}", headers=owner.headers)).status_code == 404


async def test_contacts(client, owner, other_owner):
    contacts = (await client.get("/v1/me/contacts", headers=owner.headers)).json()
    assert len(contacts) == 1
    response = await client.post("/v1/me/contacts", json={"kind": "phone", "address": owner.phone},
                                 headers=owner.headers)
    assert response.status_code == 400  # the number itself is not a second channel
    response = await client.post("/v1/me/contacts", json={"kind": "phone", "address": "13712345678"},
                                 headers=owner.headers)
    assert response.status_code == 201
    second = response.json()
    assert second["address"] == "+8613712345678"
    assert (await client.post("/v1/me/contacts", json={"kind": "phone", "address": "13712345678"},
                              headers=owner.headers)).status_code == 409
    assert (await client.delete(f"/v1/me/contacts/{second['id']}", headers=other_owner.headers)).status_code == 404
    assert (await client.delete(f"/v1/me/contacts/{second['id']}", headers=owner.headers)).status_code == 204
    response = await client.delete(f"/v1/me/contacts/{contacts[0]['id']}", headers=owner.headers)
    assert response.status_code == 409  # the last channel besides the number stays
    assert await ContactChannel.count().where(ContactChannel.owner == uuid.UUID(owner.id)) == 1


async def test_audit_trail_shows_only_my_entries(client, owner, other_owner):
    await add_binding(client, owner)
    mine = (await client.get("/v1/me/audit", headers=owner.headers)).json()
    theirs = (await client.get("/v1/me/audit", headers=other_owner.headers)).json()
    assert {e["action"] for e in mine} == {"owner:signup", "binding:create"}
    assert {e["action"] for e in theirs} == {"owner:signup"}
    assert await AuditEvent.count() == 3


async def test_everything_under_me_needs_a_session(client, owner):
    for method, url in [("get", "/v1/me/bindings"), ("post", "/v1/me/bindings"), ("get", "/v1/me/heirs"),
                        ("get", "/v1/me/contacts"), ("get", "/v1/me/audit"), ("delete", "/v1/sessions/current")]:
        response = await getattr(client, method)(url)
        assert response.status_code == 401, url
