"""Clearance: may a carrier reissue these numbers now? A few indexed reads per batch on the fast read
path, the rules in the domain."""

from __future__ import annotations

import uuid

from app import audit
from app.clock import now
from app.domain import release as rules
from app.domain.numbers import mask
from app.domain.release import CaseStatus, TaskStatus
from app.storage.engine import placeholders, read_rows, write_transaction

MAX_BATCH = 1000


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _uuid(value) -> uuid.UUID | None:
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def answer(carrier_id: uuid.UUID, e164s: list[str]) -> list[dict]:
    """One answer per number, in order. Numbers held by another carrier get an ``error`` instead."""
    moment = now()
    unique = sorted(set(e164s))
    numbers = {}
    if unique:
        for row in await read_rows(
                "SELECT p.id AS id, p.e164 AS e164, p.carrier AS carrier, t.id AS tenure FROM phone_number p"
                " LEFT JOIN tenure t ON t.number = p.id AND t.ended_at IS NULL"
                f" WHERE p.e164 IN ({placeholders(len(unique))})", *unique):
            numbers[row["e164"]] = row
    tenure_ids = [n["tenure"] for n in numbers.values() if n["tenure"] is not None]
    cases: dict[str, dict] = {}
    if tenure_ids:
        for row in await read_rows(
                "SELECT id, tenure, status, earliest_clear_at, blocked_until, opened_at FROM release_case"
                f" WHERE tenure IN ({placeholders(len(tenure_ids))}) ORDER BY opened_at", *tenure_ids):
            cases[str(row["tenure"])] = row  # the latest case of each current tenure
    tasks: dict[str, list[rules.TaskView]] = {}
    if cases:
        case_ids = [c["id"] for c in cases.values()]
        for row in await read_rows('SELECT "case" AS case_id, status, action FROM release_task'
                                   f' WHERE "case" IN ({placeholders(len(case_ids))})', *case_ids):
            tasks.setdefault(str(row["case_id"]), []).append(rules.TaskView(TaskStatus(row["status"]), row["action"]))
    holds: dict[str, object] = {}
    ids = [n["id"] for n in numbers.values()]
    if ids:
        for row in await read_rows("SELECT number, blocked_until FROM number_hold WHERE lifted_at IS NULL AND"
                                   f" blocked_until > {{}} AND number IN ({placeholders(len(ids))})", moment, *ids):
            key = str(row["number"])
            holds[key] = max(row["blocked_until"], holds.get(key, row["blocked_until"]))

    results = {}
    for e164 in unique:
        number = numbers.get(e164)
        carrier = _uuid(number["carrier"]) if number else None
        if number is not None and carrier not in (None, carrier_id):
            results[e164] = {"phone_number": e164, "error": {"status": 403, "err": "access_denied",
                                                             "detail": "this number is held by another carrier"}}
            continue
        case = cases.get(str(number["tenure"])) if number and number["tenure"] else None
        view = rules.CaseView(str(case["id"]), CaseStatus(case["status"]), case["earliest_clear_at"],
                              case["blocked_until"]) if case else None
        result = rules.clearance(known=number is not None, case=view,
                                 tasks=tasks.get(str(case["id"]), []) if case else [],
                                 hold_until=holds.get(str(number["id"])) if number else None, now=moment)
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
