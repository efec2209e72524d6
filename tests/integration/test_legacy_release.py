"""How a death reaches platforms: handovers wait for the legacy decision, then name the heir."""

from __future__ import annotations

import json

from app.services import streams
from app.storage.tables import LegacyCase, Notice, ReleaseTask
from tests.support import after_window, confirmed_heir, make_carrier, reviewer, send_event, upload
from tests.web.test_legacy_flow import bind


async def notices_by_event() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in await Notice.select(Notice.event, Notice.claims):
        out.setdefault(row["event"].rsplit("/", 1)[-1], []).append(json.loads(row["claims"]))
    return out


async def test_carrier_reported_death_holds_handovers_until_approval(client, owner):
    await streams.add_platform("WeChat", poll=True)
    await streams.add_platform("Alipay", poll=True)
    son = await confirmed_heir(client, owner, "son@example.com")
    await bind(client, owner, "wechat", "handover", son.heir_id, "给儿子")
    await bind(client, owner, "alipay", "unbind")
    carrier = await make_carrier()
    response = await send_event(client, carrier, "number.disconnected", owner.phone, reason="subscriber_deceased")
    assert response.status_code == 202, response.text

    legacy_case = await LegacyCase.select().first()
    assert legacy_case["source"] == "carrier_event" and legacy_case["status"] == "challenge"
    tasks = {t["action"]: t["status"] for t in await ReleaseTask.select(ReleaseTask.action, ReleaseTask.status)}
    assert tasks == {"handover": "held", "unbind": "pending"}
    sent = await notices_by_event()
    assert "account-handover-requested" not in sent  # nothing about the heir before a decision
    assert [n["events"][next(iter(n["events"]))]["requested_action"] for n in sent["identifier-deactivated"]] == ["unbind"]
    clearance = (await client.get(f"/v1/numbers/{owner.phone}/clearance",
                                  headers={"Authorization": f"Bearer {carrier.api_token}"})).json()
    assert clearance["tasks"]["pending"] == 2

    # the son joins the carrier's case with his claim and evidence; a reviewer approves after the window
    claim = await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)
    assert claim.status_code == 201 and claim.json()["id"] == str(legacy_case["id"])
    await upload(client, son, legacy_case["id"])
    await after_window(legacy_case["id"])
    staff = await reviewer(client)
    decided = await client.post(f"/v1/review/claims/{legacy_case['id']}/decision", headers=staff.headers,
                                json={"decision": "approve", "evidence_verified": True})
    assert decided.status_code == 200, decided.text
    handover = (await notices_by_event())["account-handover-requested"]
    assert len(handover) == 1
    event = next(iter(handover[0]["events"].values()))
    assert event["transferee"] == {"format": "email", "email": "son@example.com"}
    assert handover[0]["sub_id"] == {"format": "phone_number", "phone_number": owner.phone}


async def test_veto_turns_held_handovers_into_unbinds(client, owner):
    await streams.add_platform("WeChat", poll=True)
    son = await confirmed_heir(client, owner, "son@example.com")
    await bind(client, owner, "wechat", "handover", son.heir_id)
    carrier = await make_carrier()
    await send_event(client, carrier, "number.disconnected", owner.phone, reason="subscriber_deceased")
    case = await LegacyCase.select(LegacyCase.id).first()
    assert (await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)).status_code == 200
    task = await ReleaseTask.select(ReleaseTask.action, ReleaseTask.status).first()
    assert task == {"action": "unbind", "status": "pending"}
    sent = await notices_by_event()
    assert "account-handover-requested" not in sent
    assert next(iter(sent["identifier-deactivated"][0]["events"].values()))["requested_action"] == "unbind"


async def test_a_living_owners_cancellation_unbinds_instead_of_handing_over(client, owner):
    son = await confirmed_heir(client, owner, "son@example.com")
    await bind(client, owner, "wechat", "handover", son.heir_id)
    await bind(client, owner, "weibo", "memorialize")
    carrier = await make_carrier()
    await send_event(client, carrier, "number.disconnected", owner.phone, reason="voluntary")
    assert await LegacyCase.count() == 0
    assert {t["action"] for t in await ReleaseTask.select(ReleaseTask.action)} == {"unbind"}


async def test_fallback_to_the_next_confirmed_heir(client, owner):
    first = await confirmed_heir(client, owner, "first@example.com", "长子")
    second = await confirmed_heir(client, owner, "second@example.com", "次子", password="blue kite over hills")
    await bind(client, owner, "wechat", "handover", first.heir_id, "for the eldest")
    await client.delete(f"/v1/me/heirs/{first.heir_id}", headers=owner.headers)  # revoked later
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=second.headers)).json()
    await upload(client, second, case["id"])
    await after_window(case["id"])
    staff = await reviewer(client)
    await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                      json={"decision": "approve", "evidence_verified": True})
    received = (await client.get("/v1/me/handovers", headers=second.headers)).json()
    assert [a["instructions"] for a in received[0]["accounts"]] == ["for the eldest"]
    assert (await client.get("/v1/me/designations", headers=first.headers)).json() == []
