"""Clearance: may a carrier reissue these numbers now? One query per batch, rules in the domain."""

from __future__ import annotations

import uuid

from app import audit
from app.clock import now
from app.domain import release as rules
from app.domain.numbers import mask
from app.domain.release import CaseStatus, TaskStatus
from app.storage.engine import write_transaction
from app.storage.tables import NumberHold, PhoneNumber, ReleaseCase, ReleaseTask, Tenure

MAX_BATCH = 1000


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


async def answer(carrier_id: uuid.UUID, e164s: list[str]) -> list[dict]:
    """One answer per number, in order. Numbers held by another carrier get an ``error`` instead."""
    moment = now()
    unique = sorted(set(e164s))
    numbers = {r["e164"]: r for r in await PhoneNumber.select(
        PhoneNumber.id, PhoneNumber.e164, PhoneNumber.carrier).where(PhoneNumber.e164.is_in(unique))} if unique else {}
    ids = [n["id"] for n in numbers.values()]
    tenures = {r["number"]: r["id"] for r in await Tenure.select(Tenure.id, Tenure.number).where(
        Tenure.number.is_in(ids) & Tenure.ended_at.is_null())} if ids else {}
    cases: dict[uuid.UUID, dict] = {}
    if tenures:
        for row in await ReleaseCase.select(
                ReleaseCase.id, ReleaseCase.tenure, ReleaseCase.status, ReleaseCase.earliest_clear_at,
                ReleaseCase.blocked_until, ReleaseCase.opened_at).where(
                ReleaseCase.tenure.is_in(list(tenures.values()))).order_by(ReleaseCase.opened_at):
            cases[row["tenure"]] = row  # the latest case of each current tenure
    tasks: dict[uuid.UUID, list[rules.TaskView]] = {}
    if cases:
        for row in await ReleaseTask.select(ReleaseTask.case, ReleaseTask.status, ReleaseTask.action).where(
                ReleaseTask.case.is_in([c["id"] for c in cases.values()])):
            tasks.setdefault(row["case"], []).append(rules.TaskView(TaskStatus(row["status"]), row["action"]))
    holds: dict[uuid.UUID, object] = {}
    if ids:
        for row in await NumberHold.select(NumberHold.number, NumberHold.blocked_until).where(
                NumberHold.number.is_in(ids) & NumberHold.lifted_at.is_null() & (NumberHold.blocked_until > moment)):
            holds[row["number"]] = max(row["blocked_until"], holds.get(row["number"], row["blocked_until"]))

    results = {}
    for e164 in unique:
        number = numbers.get(e164)
        if number is not None and number["carrier"] not in (None, carrier_id):
            results[e164] = {"phone_number": e164, "error": {"status": 403, "err": "access_denied",
                                                             "detail": "this number is held by another carrier"}}
            continue
        case = cases.get(tenures.get(number["id"])) if number else None
        view = rules.CaseView(str(case["id"]), CaseStatus(case["status"]), case["earliest_clear_at"],
                              case["blocked_until"]) if case else None
        result = rules.clearance(known=number is not None, case=view, tasks=tasks.get(case["id"], []) if case else [],
                                 hold_until=holds.get(number["id"]) if number else None, now=moment)
        results[e164] = {
            "phone_number": e164, "status": result.status.value, "case_id": result.case_id,
            "earliest_clear_at": _iso(result.earliest_clear_at), "blocked_until": _iso(result.blocked_until),
            "tasks": result.tasks, "handover": result.handover, "as_of": _iso(moment),
        }
    cleared = [mask(e) for e, r in results.items() if r.get("status") == "clear"]
    if cleared:  # a "clear" lets the carrier reissue: it is kept in the audit log
        async with write_transaction():
            await audit.record("clearance:clear", actor=f"carrier:{carrier_id}", subject=f"{len(cleared)} numbers",
                               detail={"numbers": cleared[:50], "count": len(cleared)})
    return [results[e] for e in e164s]
