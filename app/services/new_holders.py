"""The new holder of a recycled number: counts about earlier tenures, unbind requests, harassment reports.

A new holder proved possession with a `new_holder` code; the session is bound to the number's current
tenure. Nothing of a previous holder is ever returned: no platform tied to a person, no names, no dates
of their accounts; only counts, and the moment the number changed hands.
"""

from __future__ import annotations

import datetime as dt
import uuid

from app import audit
from app.clock import now
from app.domain.numbers import normalize
from app.domain.release import OPEN_TASKS, TaskStatus
from app.errors import InvalidRequest, NotFound
from app.services import notices
from app.services.accounts import Principal
from app.settings import get_settings
from app.storage.engine import insert_rows, write_transaction
from app.storage.tables import HarassmentReport, ReleaseTask, Tenure, UnbindRequest, UnbindRequestTask

HARASSMENT_KINDS = ("debt_collection", "marketing", "other")
REQUEST_AGAIN_AFTER = dt.timedelta(hours=24)
MAX_NOTE = 500


async def _tenure(principal: Principal) -> dict:
    return await Tenure.select(Tenure.id, Tenure.number, Tenure.seq, Tenure.started_at).where(
        Tenure.id == principal.tenure_id).first()


async def _earlier_tasks(tenure: dict) -> list[dict]:
    return await ReleaseTask.select(ReleaseTask.id, ReleaseTask.platform, ReleaseTask.status).where(
        (ReleaseTask.case.number == tenure["number"]) & (ReleaseTask.case.tenure.seq < tenure["seq"])
        & (ReleaseTask.status != TaskStatus.CANCELLED.value))


def _platform_counts(tasks: list[dict]) -> dict[str, int]:
    """Platforms that finished every unbind they owed for earlier tenures, and platforms still owing one."""
    owing = {t["platform"] for t in tasks if TaskStatus(t["status"]) in OPEN_TASKS}
    finished = {t["platform"] for t in tasks} - owing
    return {"finished": len(finished), "pending": len(owing)}


async def _request_view(request: dict) -> dict:
    rows = await UnbindRequestTask.select(UnbindRequestTask.task.status.as_alias("status")).where(
        UnbindRequestTask.request == request["id"])
    done = sum(1 for r in rows if TaskStatus(r["status"]) not in OPEN_TASKS)
    return {"id": request["id"], "created_at": request["created_at"], "platforms_asked": len(rows),
            "platforms_done": done}


async def number_status(principal: Principal) -> dict:
    tenure = await _tenure(principal)
    recycled = tenure["seq"] > 1
    tasks = await _earlier_tasks(tenure) if recycled else []
    latest = await UnbindRequest.select().where(UnbindRequest.tenure == tenure["id"]).order_by(
        UnbindRequest.created_at, ascending=False).first()
    return {"phone_number": principal.e164, "recycled": recycled,
            "holder_since": tenure["started_at"] if recycled else None,
            "earlier_holders": tenure["seq"] - 1,
            "platforms": _platform_counts(tasks),
            "unbind_request": await _request_view(latest) if latest else None,
            "harassment_reports": await HarassmentReport.count().where(HarassmentReport.number == tenure["number"])}


async def request_unbinding(principal: Principal) -> tuple[dict, bool]:
    """Ask every platform that still owes an unbind for earlier tenures (RISC `identifier-recycled`).
    Returns (the request, whether it is new); asking again within a day returns the same request."""
    tenure = await _tenure(principal)
    moment = now()
    async with write_transaction():
        latest = await UnbindRequest.select().where(UnbindRequest.tenure == tenure["id"]).order_by(
            UnbindRequest.created_at, ascending=False).first()
        if latest is not None and moment - latest["created_at"] < REQUEST_AGAIN_AFTER:
            return await _request_view(latest), False
        owed = [t["id"] for t in await _earlier_tasks(tenure) if TaskStatus(t["status"]) in OPEN_TASKS]
        request_id = uuid.uuid4()
        await UnbindRequest.insert(UnbindRequest(id=request_id, tenure=tenure["id"], created_at=moment))
        await insert_rows(UnbindRequestTask, [dict(id=uuid.uuid4(), request=request_id, task=t) for t in owed])
        told = await notices.write_recycled_for_tasks(owed)
        await audit.record("new_holder:unbind_request", actor=f"tenure:{tenure['id']}", subject=f"request:{request_id}",
                           detail={"platforms": len(owed), "notices": told})
    row = await UnbindRequest.select().where(UnbindRequest.id == request_id).first()
    return await _request_view(row), True


async def unbind_request(principal: Principal, request_id: object) -> dict:
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError:
        raise NotFound("no such request") from None
    row = await UnbindRequest.select().where((UnbindRequest.id == rid) & (UnbindRequest.tenure == principal.tenure_id)).first()
    if row is None:
        raise NotFound("no such request")
    return await _request_view(row)


async def report_harassment(principal: Principal, kind: object, caller_number: object = None, note: object = "",
                            occurred_on: object = None) -> dict:
    if kind not in HARASSMENT_KINDS:
        raise InvalidRequest(f"kind is one of {', '.join(HARASSMENT_KINDS)}", field="kind")
    caller = normalize(caller_number, get_settings().default_region).e164 if caller_number else None
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise InvalidRequest(f"the note is at most {MAX_NOTE} characters", field="note")
    day = None
    if occurred_on:
        try:
            day = dt.date.fromisoformat(str(occurred_on))
        except ValueError:
            raise InvalidRequest("occurred_on is a date, YYYY-MM-DD", field="occurred_on") from None
        if day > now().date():
            raise InvalidRequest("occurred_on is in the future", field="occurred_on")
    tenure = await _tenure(principal)
    report_id = uuid.uuid4()
    async with write_transaction():
        await HarassmentReport.insert(HarassmentReport(id=report_id, number=tenure["number"], tenure=tenure["id"],
                                                       kind=kind, caller_e164=caller, note=note.strip(),
                                                       occurred_on=day))
        await audit.record("new_holder:harassment", actor=f"tenure:{tenure['id']}", subject=f"report:{report_id}",
                           detail={"kind": kind})
    return (await harassment(principal))


async def harassment(principal: Principal) -> dict:
    """Reports about this number (all of its new holders) as a count; this holder's own reports in full."""
    tenure = await _tenure(principal)
    mine = await HarassmentReport.select(HarassmentReport.id, HarassmentReport.kind, HarassmentReport.caller_e164,
                                         HarassmentReport.note, HarassmentReport.occurred_on,
                                         HarassmentReport.created_at).where(
        HarassmentReport.tenure == tenure["id"]).order_by(HarassmentReport.created_at, ascending=False)
    return {"reports_for_this_number": await HarassmentReport.count().where(HarassmentReport.number == tenure["number"]),
            "mine": mine}
