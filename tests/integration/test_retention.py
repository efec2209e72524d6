"""The retention schedule: the published table and the code agree, and the worker's purge does what it says."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from app.audit import verify
from app.clock import now
from app.domain.retention import RULES
from app.services import retention
from app.storage.tables import (
    Evidence, HarassmentReport, LegacyCase, OneTimeCode, OwnerSession, RecyclingQuery,
)
from tests.support import PNG, confirmed_heir, reviewer, upload

DOC = Path(__file__).resolve().parents[2] / "docs" / "legal" / "retention.md"


def test_the_published_schedule_is_the_one_the_code_enforces():
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| (\w+) ", DOC.read_text(encoding="utf-8"), re.M)
    assert [(name, int(days), action) for name, days, action in rows] == [(r.name, r.days, r.action) for r in RULES]


async def test_purge_removes_and_anonymizes_what_is_past_its_time(client, owner):
    heir = await confirmed_heir(client, owner, "heir@example.com")
    case = (await client.post("/v1/claims", json={"phone_number": owner.phone}, headers=heir.headers)).json()
    await upload(client, heir, case["id"], PNG)
    await client.post(f"/v1/claims/{case['id']}/veto", headers=owner.headers)  # the case ends
    moment = now()
    long_ago = moment - dt.timedelta(days=400)
    await LegacyCase.update({LegacyCase.closed_at: long_ago}, force=True)
    await OneTimeCode.update({OneTimeCode.expires_at: moment - dt.timedelta(days=2)}, force=True)
    fresh_code = OneTimeCode(e164="+8613900139000", purpose="login", code_hash="x", expires_at=moment)
    await fresh_code.save()
    await OwnerSession.update({OwnerSession.revoked_at: moment - dt.timedelta(days=31)}).where(
        OwnerSession.account == None)  # noqa: E711 - the owner's sessions, logged out long ago
    await RecyclingQuery.insert(
        RecyclingQuery(client_kind="caller", client_id=owner.id, api="reassigned", e164="+8613800138000",
                       asked_date=long_ago.date(), answer="no", asked_at=long_ago),
        RecyclingQuery(client_kind="caller", client_id=owner.id, api="reassigned", e164="+8613800138000",
                       asked_date=moment.date(), answer="no", asked_at=moment))
    from app.storage.tables import PhoneNumber, Tenure

    number = await PhoneNumber.select(PhoneNumber.id).first()
    tenure = await Tenure.select(Tenure.id).first()
    await HarassmentReport.insert(HarassmentReport(number=number["id"], tenure=tenure["id"], kind="marketing",
                                                   caller_e164="+8613712345678", note="every night",
                                                   created_at=long_ago))

    done = await retention.purge(moment)
    assert done["one_time_code"] >= 1 and done["recycling_query"] == 1 and done["harassment_report"] == 1
    assert done["evidence"] == 1 and done["owner_session"] >= 1
    assert await OneTimeCode.count() == 1  # the fresh one stays
    assert await RecyclingQuery.count() == 1
    report = await HarassmentReport.select(HarassmentReport.caller_e164, HarassmentReport.note).first()
    assert report == {"caller_e164": None, "note": ""}
    evidence = await Evidence.select(Evidence.kek_id, Evidence.content_ct, Evidence.sha256, Evidence.size).first()
    assert evidence["kek_id"] == "destroyed" and bytes(evidence["content_ct"]) == b"" and evidence["size"] > 0
    staff = await reviewer(client)
    shown = (await client.get(f"/v1/review/claims/{case['id']}", headers=staff.headers)).json()
    download = await client.get(f"/v1/review/claims/{case['id']}/evidence/{shown['evidence'][0]['id']}",
                                headers=staff.headers)
    assert download.status_code == 404
    assert (await retention.purge(moment)) == {k: 0 for k in done}  # idempotent
    assert (await verify()).ok
