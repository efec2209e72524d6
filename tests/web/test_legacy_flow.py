"""Heirs, claims, the veto window, review and handover, through the JSON API on the real database."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from app.clock import now
from app.services import legacy
from app.storage.tables import HandoverGrant, Heir, LegacyCase
from tests.support import (
    after_window, confirmed_heir, invite_heir, last_link, log_in_person, messages_to, platform_id, reviewer,
    upload,
)

INSTRUCTIONS_A = "微信零钱请转给妈妈，聊天记录导出后删除"
INSTRUCTIONS_B = "Keep the photo albums; close the shop"



async def bind(client, owner, slug, disposition, heir_id=None, instructions=None, hint=None):
    body = {"platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": disposition,
            "heir_id": heir_id, "instructions": instructions, "account_hint": hint}
    response = await client.post("/v1/me/bindings", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def family(client, owner):
    """An owner with two confirmed heirs, a handover binding for each and an unbind binding."""
    son = await confirmed_heir(client, owner, "son@example.com", "李明")
    daughter = await confirmed_heir(client, owner, "daughter@example.com", "李华", password="blue kite over hills")
    a = await bind(client, owner, "wechat", "handover", son.heir_id, INSTRUCTIONS_A, "wxid_parent")
    b = await bind(client, owner, "weibo", "handover", daughter.heir_id, INSTRUCTIONS_B, "@parent")
    await bind(client, owner, "alipay", "unbind")
    return {"son": son, "daughter": daughter, "bindings": (a, b)}


async def test_invitation_accept_confirm_and_the_link_works_once(client, owner, other_owner):
    heir_id = await invite_heir(client, owner, "heir@example.com", phone_number="+8613912345678")
    token = await last_link("heir@example.com", "/invitations/")
    assert any("/invitations/" in m["body"] for m in await messages_to("+8613912345678"))  # the second number too
    shown = (await client.get(f"/v1/invitations/{token}")).json()
    assert shown["owner_number"].startswith("+86138") and "8000" not in shown["owner_number"][:-4]
    assert shown["has_account"] is False
    assert (await client.post(f"/v1/invitations/{token}/accept", json={"password": "short"})).status_code == 400
    accepted = await client.post(f"/v1/invitations/{token}/accept", json={"password": "quiet harbor lantern 77"})
    assert accepted.status_code == 201
    again = await client.post(f"/v1/invitations/{token}/accept", json={"password": "quiet harbor lantern 77"})
    assert again.status_code == 404
    assert (await client.post(f"/v1/me/heirs/{heir_id}/confirm", headers=other_owner.headers)).status_code == 404
    assert any("accepted" in m["subject"] or "接受" in m["subject"] for m in await messages_to("owner8000@example.com"))
    assert (await client.post(f"/v1/me/heirs/{heir_id}/confirm", headers=owner.headers)).status_code == 200
    assert (await client.post(f"/v1/me/heirs/{heir_id}/confirm", headers=owner.headers)).status_code == 409
    heir = await log_in_person(client, "heir@example.com", "quiet harbor lantern 77")
    designations = (await client.get("/v1/me/designations", headers=heir.headers)).json()
    assert [(d["status"], d["owner_number"]) for d in designations] == [("confirmed", shown["owner_number"])]
    # an heir's session is not an owner's
    assert (await client.get("/v1/me/bindings", headers=heir.headers)).status_code == 403
    assert (await client.get("/v1/me/designations", headers=owner.headers)).status_code == 403


async def test_unanswered_invitation_lapses_and_can_be_sent_again(client, owner):
    heir_id = await invite_heir(client, owner, "slow@example.com")
    first = await last_link("slow@example.com", "/invitations/")
    counts = await legacy.run_timers(now() + dt.timedelta(days=15))
    assert counts["invitations_lapsed"] == 1
    assert (await Heir.select(Heir.status).where(Heir.id == heir_id).first())["status"] == "lapsed"
    assert (await client.get(f"/v1/invitations/{first}")).status_code == 404
    assert any("slow" not in m["body"] or "expired" in m["body"] or "过期" in m["body"]
               for m in await messages_to("owner8000@example.com"))
    assert (await client.post(f"/v1/me/heirs/{heir_id}/invitation", headers=owner.headers)).status_code == 202
    second = await last_link("slow@example.com", "/invitations/")
    assert second != first and (await client.get(f"/v1/invitations/{second}")).status_code == 200


async def test_only_a_confirmed_heir_can_claim(client, owner, other_owner):
    stranger = await confirmed_heir(client, other_owner, "stranger@example.com")  # an heir, of someone else
    response = await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=stranger.headers)
    assert response.status_code == 403
    unconfirmed = await confirmed_heir(client, owner, "pending@example.com", confirm=False)
    response = await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=unconfirmed.headers)
    assert response.status_code == 403
    unknown = await client.post("/v1/claims", json={"phone_number": "+8613700137000"}, headers=stranger.headers)
    assert unknown.status_code == 403 and unknown.json()["detail"] == response.json()["detail"]
    assert (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=owner.headers)).status_code == 403
    assert await LegacyCase.count() == 0


async def test_veto_by_link_ends_the_case_and_releases_nothing(client, owner, family):
    son = family["son"]
    claim = await client.post("/v1/claims", json={"phone_number": owner.phone, "note": "父亲于上周去世"},
                              headers=son.headers)
    assert claim.status_code == 201, claim.text
    case = claim.json()
    assert case["status"] == "challenge"
    assert dt.datetime.fromisoformat(case["veto_ends_at"]) - dt.datetime.fromisoformat(case["opened_at"]) == dt.timedelta(days=7)
    alerts = [m for m in await messages_to("owner8000@example.com") if "/veto/" in m["body"]]
    assert len(alerts) == 1
    assert not any("/veto/" in m["body"] for m in await messages_to(owner.phone))  # never the number itself
    second = await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["daughter"].headers)
    assert second.status_code == 409

    link = await last_link("owner8000@example.com", "/veto/")
    page = await client.get(f"/veto/{link}")
    assert page.status_code == 200 and "veto-confirm" in page.text
    tampered = await client.post(f"/veto/{link[:-2]}xx", data={})
    assert tampered.status_code in (403, 404)
    vetoed = await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)
    assert vetoed.json()["status"] == "vetoed"
    assert (await client.get("/v1/me/handovers", headers=son.headers)).json() == []
    assert any("cancel" in m["subject"].lower() or "取消" in m["subject"] for m in await messages_to(son.email))
    await after_window(case["id"])
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "vetoed"
    # after a veto a new claim may be opened
    assert (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).status_code == 201


async def test_one_click_veto_link_is_single_use(client, owner, family):
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["son"].headers)).json()
    link = await last_link("owner8000@example.com", "/veto/")
    csrf = client.cookies.get("csrftoken")
    if csrf is None:
        await client.get(f"/veto/{link}")
        csrf = client.cookies.get("csrftoken")
    used = await client.post(f"/veto/{link}", data={"_csrf_token": csrf})
    assert used.status_code == 200 and "veto-done" in used.text
    assert (await LegacyCase.select(LegacyCase.status).where(LegacyCase.id == case["id"]).first())["status"] == "vetoed"
    again = await client.post(f"/veto/{link}", data={"_csrf_token": csrf})
    assert again.status_code == 409


async def test_other_owner_cannot_see_or_veto(client, owner, other_owner, family):
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["son"].headers)).json()
    assert (await client.post(f"/v1/claims/{case['id']}/veto", headers=other_owner.headers)).status_code == 404
    assert (await client.get(f"/v1/claims/{case['id']}", headers=other_owner.headers)).status_code == 404
    assert (await client.get(f"/v1/claims/{case['id']}", headers=owner.headers)).status_code == 200
    assert [c["id"] for c in (await client.get("/v1/me/claims", headers=owner.headers)).json()] == [case["id"]]


async def test_alerts_on_opening_midway_and_the_day_before(client, owner, family):
    response = await client.put("/v1/me/legacy-settings", json={"veto_window_days": 5}, headers=owner.headers)
    assert response.status_code == 400
    assert (await client.put("/v1/me/legacy-settings", json={"veto_window_days": 14},
                             headers=owner.headers)).json()["veto_window_days"] == 14
    await client.post("/v1/me/contacts", json={"kind": "phone", "address": "+8613712345678"}, headers=owner.headers)
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["son"].headers)).json()
    opened = dt.datetime.fromisoformat(case["opened_at"])
    assert dt.datetime.fromisoformat(case["veto_ends_at"]) - opened == dt.timedelta(days=14)

    def alerts(rows):
        return [m for m in rows if "/veto/" in m["body"]]

    assert len(alerts(await messages_to("+8613712345678"))) == 1  # a second number gets them too
    await legacy.run_timers(opened + dt.timedelta(days=3))
    assert len(alerts(await messages_to("owner8000@example.com"))) == 1
    await legacy.run_timers(opened + dt.timedelta(days=7, minutes=1))
    await legacy.run_timers(opened + dt.timedelta(days=7, minutes=2))  # idempotent
    assert len(alerts(await messages_to("owner8000@example.com"))) == 2
    await legacy.run_timers(opened + dt.timedelta(days=13, minutes=1))
    assert len(alerts(await messages_to("owner8000@example.com"))) == 3
    links = {m["body"].split("/veto/")[1].split()[0] for m in alerts(await messages_to("owner8000@example.com"))}
    assert len(links) == 3  # each alert has its own link
    assert not alerts(await messages_to(owner.phone))


async def test_an_alert_that_cannot_be_written_is_not_counted_and_goes_out_on_the_next_run(client, owner, family,
                                                                                              monkeypatch):
    """The veto-window alert counts as sent only with its messages in the outbox: if they cannot be
    written, the next timer run sends it."""
    from app.notify import outbox

    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["son"].headers)).json()
    opened, ends = (dt.datetime.fromisoformat(case[key]) for key in ("opened_at", "veto_ends_at"))
    midway = opened + (ends - opened) / 2
    store = outbox.store

    async def broken(messages, routed):
        if messages:
            raise OSError("disk full")

    monkeypatch.setattr(outbox, "store", broken)
    with pytest.raises(OSError):
        await legacy.run_timers(midway + dt.timedelta(minutes=1))
    assert (await LegacyCase.select(LegacyCase.alerts_sent).first())["alerts_sent"] == 1  # the opening alert only
    monkeypatch.setattr(outbox, "store", store)
    assert (await legacy.run_timers(midway + dt.timedelta(minutes=2)))["alerts"] == 1
    assert (await LegacyCase.select(LegacyCase.alerts_sent).first())["alerts_sent"] == 2
    assert len([m for m in await messages_to("owner8000@example.com") if "/veto/" in m["body"]]) == 2


@contextlib.contextmanager
def outbox_down():
    """Writing messages fails inside the block."""
    from app.notify import outbox

    async def broken(messages, routed):
        if messages:
            raise OSError("disk full")

    store, outbox.store = outbox.store, broken
    try:
        yield
    finally:
        outbox.store = store


async def test_an_invitation_whose_letter_cannot_be_written_does_not_lapse(client, owner):
    """An invitation lapses with the owner's letter about it, or not at all; the next timer run does both."""
    heir_id = await invite_heir(client, owner, "slow@example.com")
    with outbox_down(), pytest.raises(OSError):
        await legacy.run_timers(now() + dt.timedelta(days=15))
    assert (await Heir.select(Heir.status).where(Heir.id == heir_id).first())["status"] == "invited"
    assert (await legacy.run_timers(now() + dt.timedelta(days=15)))["invitations_lapsed"] == 1
    lapsed = [m for m in await messages_to("owner8000@example.com") if "邀请已过期" in m["body"] or "expired" in m["body"]]
    assert len(lapsed) == 1


async def test_a_window_end_whose_letters_cannot_be_written_waits_for_the_next_run(client, owner, family):
    """A claim goes to review with the reviewers' letters about it, or not at all."""
    staff = await reviewer(client)
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=family["son"].headers)).json()
    ends = dt.datetime.fromisoformat(case["veto_ends_at"])
    await legacy.run_timers(ends - dt.timedelta(hours=1))  # every alert of the window sent
    with outbox_down(), pytest.raises(OSError):
        await legacy.run_timers(ends + dt.timedelta(seconds=1))
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "challenge"
    assert (await legacy.run_timers(ends + dt.timedelta(seconds=2)))["to_review"] == 1
    assert [m for m in await messages_to(staff.email) if f"/review/{case['id']}" in m["body"]]


async def test_a_decision_whose_letters_cannot_be_written_is_not_taken(client, owner, family):
    """An owner's veto and a reviewer's rejection commit with the claimant's letter, or not at all."""
    son = family["son"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    with outbox_down():
        assert (await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)).status_code == 500
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "challenge"
    staff = await reviewer(client)
    url = f"/v1/review/claims/{case['id']}/decision"
    with outbox_down():
        rejected = await client.post(url, headers=staff.headers, json={"decision": "reject", "reason": "forged"})
        assert rejected.status_code == 500
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "challenge"
    assert (await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)).json()["status"] == "vetoed"
    assert any("cancel" in m["subject"].lower() or "取消" in m["subject"] for m in await messages_to(son.email))


async def test_an_approval_whose_letters_cannot_be_written_grants_nothing(client, owner, family):
    """The heirs' grants commit with their letters ("your handover is ready"), or not at all."""
    son = family["son"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    assert (await upload(client, son, case["id"])).status_code == 201
    await after_window(case["id"])
    staff = await reviewer(client)
    url = f"/v1/review/claims/{case['id']}/decision"
    approve = {"decision": "approve", "evidence_verified": True, "reason": "certificate checked"}
    with outbox_down():
        assert (await client.post(url, headers=staff.headers, json=approve)).status_code == 500
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "evidence_review"
    assert await HandoverGrant.count() == 0
    assert (await client.get("/v1/me/handovers", headers=son.headers)).json() == []
    assert (await client.post(url, headers=staff.headers, json=approve)).json()["status"] == "executing"
    assert len((await client.get("/v1/me/handovers", headers=son.headers)).json()) == 1
    assert any("/heir" in m["body"] for m in await messages_to(son.email))


async def test_approval_releases_to_each_heir_exactly_their_accounts(client, owner, family):
    son, daughter = family["son"], family["daughter"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    assert (await upload(client, son, case["id"])).status_code == 201
    staff = await reviewer(client)
    queue = (await client.get("/v1/review/claims", headers=staff.headers)).json()
    assert [c["id"] for c in queue] == [case["id"]]
    early = await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                              json={"decision": "approve", "evidence_verified": True})
    assert early.status_code == 409  # the veto window is still open
    await after_window(case["id"])
    unverified = await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                                   json={"decision": "approve"})
    assert unverified.status_code == 409
    assert (await client.post(f"/v1/review/claims/{case['id']}/decision", headers=son.headers,
                              json={"decision": "approve", "evidence_verified": True})).status_code == 403
    approved = await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                                 json={"decision": "approve", "evidence_verified": True, "reason": "certificate checked"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "executing"
    assert any("/heir" in m["body"] for m in await messages_to(son.email))

    mine = (await client.get("/v1/me/handovers", headers=son.headers)).json()
    assert len(mine) == 1
    assert [(a["platform"]["slug"], a["instructions"], a["account_hint"]) for a in mine[0]["accounts"]] == [
        ("wechat", INSTRUCTIONS_A, "wxid_parent")]
    hers = (await client.get("/v1/me/handovers", headers=daughter.headers)).json()
    assert [a["instructions"] for a in hers[0]["accounts"]] == [INSTRUCTIONS_B]
    son_item = mine[0]["accounts"][0]["id"]
    assert (await client.get(f"/v1/me/handovers/{son_item}", headers=daughter.headers)).status_code == 404
    assert (await client.post(f"/v1/me/handovers/{son_item}/done", headers=daughter.headers)).status_code == 404
    assert (await client.get(f"/v1/me/handovers/{son_item}", headers=son.headers)).json()["instructions"] == INSTRUCTIONS_A

    done = await client.post(f"/v1/me/handovers/{son_item}/done", headers=son.headers)
    assert done.status_code == 200 and done.json()["done_at"]
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "executing"
    await client.post(f"/v1/me/handovers/{hers[0]['accounts'][0]['id']}/done", headers=daughter.headers)
    assert (await LegacyCase.select(LegacyCase.status).first())["status"] == "completed"
    trail = [e["action"] for e in (await client.get("/v1/me/audit", headers=owner.headers)).json()]
    assert {"legacy:claim", "legacy:evidence", "legacy:approve", "handover:view", "handover:done"} <= set(trail)


async def test_access_expires(client, owner, family):
    son = family["son"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    await upload(client, son, case["id"])
    await after_window(case["id"])
    staff = await reviewer(client)
    await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                      json={"decision": "approve", "evidence_verified": True})
    item = (await client.get("/v1/me/handovers", headers=son.headers)).json()[0]["accounts"][0]["id"]
    counts = await legacy.run_timers(now() + dt.timedelta(days=91))
    assert counts["completed"] == 1
    assert (await client.get("/v1/me/handovers", headers=son.headers)).json() == []
    assert (await client.get(f"/v1/me/handovers/{item}", headers=son.headers)).status_code == 404


async def test_rejection_needs_a_reason_and_releases_nothing(client, owner, family):
    son = family["son"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    staff = await reviewer(client)
    url = f"/v1/review/claims/{case['id']}/decision"
    assert (await client.post(url, headers=staff.headers, json={"decision": "reject"})).status_code == 400
    rejected = await client.post(url, headers=staff.headers, json={"decision": "reject", "reason": "forged certificate"})
    assert rejected.json()["status"] == "rejected"
    assert (await client.post(url, headers=staff.headers, json={"decision": "approve",
                                                                 "evidence_verified": True})).status_code == 409
    assert (await client.get("/v1/me/handovers", headers=son.headers)).json() == []
    assert any("forged certificate" in m["body"] for m in await messages_to(son.email))


async def test_a_reviewer_cannot_decide_a_case_they_are_party_to(client, owner):
    heir = await confirmed_heir(client, owner, "staff.heir@example.com")
    staff = await reviewer(client, "staff.heir@example.com", heir.password)  # the same person is operator staff
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=staff.headers)).json()
    assert heir.email == staff.email
    await upload(client, staff, case["id"])
    await after_window(case["id"])
    response = await client.post(f"/v1/review/claims/{case['id']}/decision", headers=staff.headers,
                                 json={"decision": "approve", "evidence_verified": True})
    assert response.status_code == 403
    assert (await client.get(f"/v1/review/claims/{case['id']}/evidence/{case['id']}",
                             headers=staff.headers)).status_code == 403
    queue = (await client.get("/v1/review/claims", headers=staff.headers)).json()
    assert queue[0]["party"] is True


async def test_heirs_and_owners_are_not_reviewers(client, owner, family):
    assert (await client.get("/v1/review/claims", headers=family["son"].headers)).status_code == 403
    assert (await client.get("/v1/review/claims", headers=owner.headers)).status_code == 403
    assert (await client.get("/v1/review/claims")).status_code == 401


async def test_no_instruction_text_anywhere_before_approval(client, owner, family, db):
    from app.storage.tables import ALL_TABLES

    son = family["son"]
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=son.headers)).json()
    await upload(client, son, case["id"])
    await after_window(case["id"])
    staff = await reviewer(client)
    answers = [
        await client.get(f"/v1/claims/{case['id']}", headers=son.headers),
        await client.get("/v1/me/designations", headers=son.headers),
        await client.get("/v1/me/handovers", headers=son.headers),
        await client.get("/v1/me/handovers", headers=family["daughter"].headers),
        await client.get("/v1/review/claims", headers=staff.headers),
        await client.get(f"/v1/review/claims/{case['id']}", headers=staff.headers),
    ]
    client.cookies.set("heirline_session", son.token)
    answers.append(await client.get("/heir"))
    client.cookies.set("heirline_session", staff.token)
    answers.append(await client.get(f"/review/{case['id']}"))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in (INSTRUCTIONS_A, INSTRUCTIONS_B, "wxid_parent"):
            assert secret not in answer.text
    needles = [s.encode() for s in (INSTRUCTIONS_A, INSTRUCTIONS_B, "wxid_parent")]
    for table in ALL_TABLES:
        for row in await table.select():
            for value in row.values():
                raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
                assert not any(n in raw for n in needles), f"{table._meta.tablename} holds instruction text"
