"""Clearance: may a carrier reissue these numbers now? One indexed read per batch, or per group of
single lookups asked at once, on the fast read path; the rules in the domain."""

from __future__ import annotations

import functools
import uuid

from app import audit
from app.clock import now
from app.domain import release as rules
from app.domain.numbers import InvalidNumber, already_e164, mask, normalize
from app.domain.release import CaseStatus, TaskStatus
from app.storage.engine import any_of, read_moment, read_rows
from app.storage.group_commit import GroupCommit

MAX_BATCH = 1000


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@functools.cache
def _task_view(status: str, action: str) -> rules.TaskView:
    return rules.TaskView(TaskStatus(status), action)


@functools.cache
def _case_status(status: str) -> CaseStatus:
    return CaseStatus(status)  # an enum's lookup by value costs half a microsecond; a batch makes a thousand


async def answer(carrier_id: uuid.UUID, asked: list[str], default_region: str) -> list[dict]:
    """One answer per number asked, in order. Numbers held by another carrier get an ``error`` instead;
    a number that is not valid raises :class:`InvalidNumber` (the batch is refused whole)."""
    e164s = {raw: _e164(raw, default_region) for raw in asked}
    for raw in asked:  # refused before any read
        if isinstance(e164s[raw], InvalidNumber):
            raise e164s[raw]
    found = await _look_up(carrier_id, e164s, default_region)
    for raw in asked:  # written as E.164, never registered, and not a valid mobile number
        if isinstance(found[raw], InvalidNumber):
            raise found[raw]
    answers = [found[raw] for raw in asked]
    await _record_clear(carrier_id, answers)
    return answers


async def answer_one(carrier_id: uuid.UUID, asked: str, default_region: str) -> dict:
    """One number's answer, as :func:`answer` gives it. Lookups asked of this process while another is
    being read are read together, in one statement (each still answered on its own, an invalid number
    refused on its own): under load a lookup then costs the database a share of one read, not a read and,
    on PostgreSQL, a round trip and a connection of its own."""
    return await _singles.submit((carrier_id, asked, default_region))


async def _answer_together(lookups: list[tuple[uuid.UUID, str, str]]) -> list[dict | InvalidNumber]:
    """The lookups :func:`answer_one` gathered: one read per carrier and region among them (one in all,
    under a single carrier's load), its "clear" answers kept in the audit log together."""
    asked: dict[tuple[uuid.UUID, str], list[str]] = {}
    for carrier_id, raw, region in lookups:
        asked.setdefault((carrier_id, region), []).append(raw)
    found = {}
    for (carrier_id, region), numbers in asked.items():
        answers = found[carrier_id, region] = await _look_up(
            carrier_id, {raw: _e164(raw, region) for raw in numbers}, region)
        await _record_clear(carrier_id, [a for a in answers.values() if not isinstance(a, InvalidNumber)])
    return [found[carrier_id, region][raw] for carrier_id, raw, region in lookups]


_singles = GroupCommit(_answer_together, max_group=256)


async def _record_clear(carrier_id: uuid.UUID, answers: list[dict]) -> None:
    """A "clear" lets the carrier reissue: it is kept in the audit log before it is answered."""
    cleared = [mask(a["phone_number"]) for a in answers if a.get("status") == "clear"]
    if cleared:
        await audit.record_on_its_own("clearance:clear", actor=f"carrier:{carrier_id}",
                                      subject=f"{len(cleared)} numbers",
                                      detail={"numbers": cleared[:50], "count": len(cleared)})


def _e164(raw: str, default_region: str) -> str | InvalidNumber:
    try:
        return raw if already_e164(raw) else normalize(raw, default_region).e164
    except InvalidNumber as refused:
        return refused


async def _look_up(carrier_id: uuid.UUID, e164s: dict[str, str | InvalidNumber],
                   default_region: str) -> dict[str, dict | InvalidNumber]:
    """Each number asked (as written, with its E.164 form or what refused it) with its answer, or the
    :class:`InvalidNumber` that refuses it.

    One indexed read, whatever the number of numbers: each number with its current tenure's latest release
    case, the hold in force longest, and the case's tasks counted by (status, action), a row per number
    and kind of task. Ids come back as text and tasks as counts, so a batch of 1,000 numbers with five
    tasks each builds a row or two per number in Python, not six with a UUID object per id. A number
    found in the registry exactly as written was validated when it was registered, so only the others
    go through the full check.
    """
    e164s = dict(e164s)  # the caller's stays as given
    moment = now()
    unique = sorted({e164 for e164 in e164s.values() if isinstance(e164, str)})
    in_unique, unique_args = any_of("p.e164", unique)
    known: dict[str, dict] = {}
    tasks: dict[str, list[rules.TaskView]] = {}
    for row in await read_rows(
            "SELECT p.e164 AS e164, CAST(p.carrier AS TEXT) AS carrier, CAST(c.id AS TEXT) AS case_id,"
            " c.status AS status, c.earliest_clear_at AS earliest_clear_at, c.blocked_until AS blocked_until,"
            " (SELECT MAX(h.blocked_until) FROM number_hold h WHERE h.number = p.id AND h.lifted_at IS NULL"
            "  AND h.blocked_until > {}) AS hold_until,"
            " k.status AS task_status, k.action AS action, COUNT(k.id) AS tasks"
            " FROM phone_number p LEFT JOIN tenure t ON t.number = p.id AND t.ended_at IS NULL"
            # the current tenure's latest case; of cases opened in one event group, the one not cancelled.
            # Found by its tenure, whose index pages the subquery has just read, not again by its id
            " LEFT JOIN release_case c ON c.tenure = t.id"
            "  AND c.id = (SELECT r.id FROM release_case r WHERE r.tenure = t.id"
            "  ORDER BY r.opened_at DESC, CASE WHEN r.status = 'cancelled' THEN 1 ELSE 0 END LIMIT 1)"
            ' LEFT JOIN release_task k ON k."case" = c.id'
            f" WHERE {in_unique} GROUP BY p.id, c.id, k.status, k.action", moment, *unique_args) if unique else []:
        if row["e164"] not in known:
            known[row["e164"]] = row
        if row["tasks"]:
            tasks.setdefault(row["case_id"], []).extend([_task_view(row["task_status"], row["action"])] * row["tasks"])

    for raw, e164 in e164s.items():
        if e164 == raw and e164 not in known:  # never registered: it must still be a valid mobile number
            try:
                normalize(raw, default_region)
            except InvalidNumber as refused:
                e164s[raw] = refused

    mine, as_of = str(carrier_id), _iso(moment)
    results = {}
    for e164 in unique:
        number = known.get(e164)
        if number is not None and number["carrier"] not in (None, mine):
            results[e164] = {"phone_number": e164, "error": {"status": 403, "err": "access_denied",
                                                             "detail": "this number is held by another carrier"}}
            continue
        case_id = number["case_id"] if number else None
        view = rules.CaseView(case_id, _case_status(number["status"]), number["earliest_clear_at"],
                              number["blocked_until"]) if case_id else None
        result = rules.clearance(known=number is not None, case=view, tasks=tasks.get(case_id, []) if case_id else [],
                                 hold_until=read_moment(number["hold_until"]) if number else None, now=moment)
        results[e164] = {
            "phone_number": e164, "status": result.status.value, "case_id": result.case_id,
            "earliest_clear_at": _iso(result.earliest_clear_at), "blocked_until": _iso(result.blocked_until),
            "tasks": result.tasks, "handover": result.handover, "as_of": as_of,
        }
    return {raw: e164 if isinstance(e164, InvalidNumber) else results[e164] for raw, e164 in e164s.items()}
