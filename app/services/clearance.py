"""Clearance: may a carrier reissue these numbers now? Three indexed reads per batch on the fast read
path, the rules in the domain."""

from __future__ import annotations

import functools
import uuid

from app import audit
from app.clock import now
from app.domain import release as rules
from app.domain.numbers import already_e164, mask, normalize
from app.domain.release import CaseStatus, TaskStatus
from app.storage.engine import any_of, read_rows, write_transaction

MAX_BATCH = 1000


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@functools.cache
def _task_view(status: str, action: str) -> rules.TaskView:
    return rules.TaskView(TaskStatus(status), action)


async def answer(carrier_id: uuid.UUID, asked: list[str], default_region: str) -> list[dict]:
    """One answer per number asked, in order. Numbers held by another carrier get an ``error`` instead;
    a number that is not valid raises :class:`InvalidNumber` (the batch is refused whole).

    Three indexed reads per batch, whatever its size: each number with its current tenure's latest
    release case, that case's tasks counted by (status, action), and the holds in force. Ids come back
    as text and tasks as counts, so a batch of 1,000 numbers with five tasks each builds 1,000 rows in
    Python, not 6,000 with a UUID object per id. A number found in the registry exactly as written was
    validated when it was registered, so only the others go through the full check.
    """
    e164s = {raw: raw if already_e164(raw) else normalize(raw, default_region).e164 for raw in asked}
    moment = now()
    unique = sorted(set(e164s.values()))
    in_unique, unique_args = any_of("p.e164", unique)
    numbers = await read_rows(
        "SELECT p.e164 AS e164, CAST(p.carrier AS TEXT) AS carrier, CAST(c.id AS TEXT) AS case_id,"
        " c.status AS status, c.earliest_clear_at AS earliest_clear_at, c.blocked_until AS blocked_until"
        " FROM phone_number p LEFT JOIN tenure t ON t.number = p.id AND t.ended_at IS NULL"
        " LEFT JOIN release_case c ON c.id = (SELECT r.id FROM release_case r WHERE r.tenure = t.id"
        # the current tenure's latest case; of cases opened in one event group, the one not cancelled
        "  ORDER BY r.opened_at DESC, CASE WHEN r.status = 'cancelled' THEN 1 ELSE 0 END LIMIT 1)"
        f" WHERE {in_unique}", *unique_args) if unique else []
    known = {row["e164"]: row for row in numbers}
    case_ids = [row["case_id"] for row in numbers if row["case_id"] is not None]
    tasks: dict[str, list[rules.TaskView]] = {}
    if case_ids:
        in_cases, case_args = any_of('"case"', case_ids)
        for row in await read_rows(
                'SELECT CAST("case" AS TEXT) AS case_id, status, action, COUNT(*) AS n FROM release_task'
                f' WHERE {in_cases} GROUP BY "case", status, action', *case_args):
            tasks.setdefault(row["case_id"], []).extend([_task_view(row["status"], row["action"])] * row["n"])
    holds: dict[str, object] = {}
    if numbers:
        in_known, known_args = any_of("p.e164", list(known))
        for row in await read_rows(
                "SELECT p.e164 AS e164, h.blocked_until AS blocked_until FROM number_hold h"
                " JOIN phone_number p ON p.id = h.number WHERE h.lifted_at IS NULL AND h.blocked_until > {}"
                f" AND {in_known}", moment, *known_args):
            e164 = row["e164"]
            holds[e164] = max(row["blocked_until"], holds.get(e164, row["blocked_until"]))

    for raw, e164 in e164s.items():
        if e164 not in known and e164 == raw:
            normalize(raw, default_region)  # never registered: it must still be a valid mobile number

    mine, as_of = str(carrier_id), _iso(moment)
    results = {}
    for e164 in unique:
        number = known.get(e164)
        if number is not None and number["carrier"] not in (None, mine):
            results[e164] = {"phone_number": e164, "error": {"status": 403, "err": "access_denied",
                                                             "detail": "this number is held by another carrier"}}
            continue
        case_id = number["case_id"] if number else None
        view = rules.CaseView(case_id, CaseStatus(number["status"]), number["earliest_clear_at"],
                              number["blocked_until"]) if case_id else None
        result = rules.clearance(known=number is not None, case=view, tasks=tasks.get(case_id, []) if case_id else [],
                                 hold_until=holds.get(e164), now=moment)
        results[e164] = {
            "phone_number": e164, "status": result.status.value, "case_id": result.case_id,
            "earliest_clear_at": _iso(result.earliest_clear_at), "blocked_until": _iso(result.blocked_until),
            "tasks": result.tasks, "handover": result.handover, "as_of": as_of,
        }
    cleared = [mask(e) for e, r in results.items() if r.get("status") == "clear"]
    if cleared:  # a "clear" lets the carrier reissue: it is kept in the audit log
        async with write_transaction():
            await audit.record("clearance:clear", actor=f"carrier:{carrier_id}", subject=f"{len(cleared)} numbers",
                               detail={"numbers": cleared[:50], "count": len(cleared)})
    return [results[e164s[raw]] for raw in asked]
