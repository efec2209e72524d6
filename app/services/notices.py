"""Platform notices: written into the durable outbox in the same transaction as the tasks they serve,
read by polling platforms, and answered with outcomes that move tasks and cases to their end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING

from app import audit
from app.clock import now
from app.crypto import sets
from app.domain import notices as rules
from app.domain.release import CaseStatus, TaskStatus, TERMINAL_TASKS
from app.errors import Conflict, InvalidRequest, NotFound
from app.settings import get_settings
from app.storage.engine import in_transaction, insert_rows, where_in, write_transaction
from app.storage.ids import new_id
if TYPE_CHECKING:
    from piccolo.columns.combination import Where

from app.storage.tables import (
    CaseOutcome, Notice, ReleaseCase, ReleaseTask, Stream,
)

ACTIVE_STREAMS = ("enabled", "paused")


async def _streams_by_platform(platform_ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, dict]:
    """The streams notices may be written to, by platform, with whether the platform takes every
    disconnection (``default_subjects``; inside the writing transaction, as it sees them)."""
    sql = ("SELECT s.id, s.platform, s.events_requested, s.status, s.delivery_method, p.default_subjects"
           " FROM ssf_stream s JOIN platform p ON p.id = s.platform"
           f" WHERE s.status IN {ACTIVE_STREAMS!r}")  # constants, not input
    if platform_ids is None:
        rows = await in_transaction(sql)
    else:
        rows = await where_in(sql + " AND s.platform IN ({})", platform_ids)
    return {row["platform"]: row for row in rows}


def _wants(stream: dict, event: str) -> bool:
    requested = json.loads(stream["events_requested"])
    return not requested or event in requested


def _notice(stream: dict, platform_id, *, case: dict | None, task_id, event: str, payload: dict,
            e164: str, moment: dt.datetime, deadline: dt.datetime) -> dict:
    jti = uuid.uuid4()
    claims = rules.claims(issuer=get_settings().issuer, jti=jti.hex, aud=str(platform_id), iat=moment,
                          sub_id=rules.phone_subject(e164), event=event, payload=payload,
                          txn=str(case["id"]) if case else None)
    return dict(id=jti, stream=stream["id"], case=case["id"] if case else None, task=task_id, event=event,
                claims=json.dumps(claims, ensure_ascii=False), deadline=deadline,
                next_attempt_at=rules.first_attempt(stream["delivery_method"], moment),
                created_at=moment)


_TASK_COLUMNS = (ReleaseTask.id, ReleaseTask.case, ReleaseTask.platform, ReleaseTask.action, ReleaseTask.status,
                 ReleaseTask.heir.email.as_alias("heir_email"))
_CASE_COLUMNS = (ReleaseCase.id, ReleaseCase.reason, ReleaseCase.disconnected_at, ReleaseCase.earliest_clear_at,
                 ReleaseCase.number.e164.as_alias("e164"))


def _task_notice(stream: dict | None, task: dict, case: dict, moment: dt.datetime) -> dict | None:
    """The notice asking a platform for one task: a handover names the heir as `transferee`."""
    if stream is None:
        return None  # the platform takes no notices yet: the task waits, visible to the operator
    issuer = get_settings().issuer
    base = {"reason": case["reason"], "disconnected_at": rules.numeric(case["disconnected_at"]),
            "earliest_reassign_at": rules.numeric(case["earliest_clear_at"]), "case_id": str(case["id"])}
    if task["action"] == "handover" and task["heir_email"]:
        event = rules.own_event(issuer, "account-handover-requested")
        payload = {**base, "requested_action": "handover",
                   "transferee": {"format": "email", "email": task["heir_email"]}}
    else:
        event, payload = rules.own_event(issuer, "identifier-deactivated"), {**base, "requested_action": task["action"]}
    if not _wants(stream, event):
        return None
    return _notice(stream, task["platform"], case=case, task_id=task["id"], event=event, payload=payload,
                   e164=case["e164"], moment=moment, deadline=case["earliest_clear_at"])


async def write_for_tasks(task_ids: list[uuid.UUID]) -> int:
    """Notices for pending tasks released after their case's notices went out (a legacy case's
    decision). Tasks of cases not yet due wait for :func:`write_for_cases`. Call inside the transaction."""
    if not task_ids:
        return 0
    tasks = await ReleaseTask.select(*_TASK_COLUMNS).where(
        ReleaseTask.id.is_in(task_ids) & (ReleaseTask.status == TaskStatus.PENDING.value))
    cases = {c["id"]: c for c in await ReleaseCase.select(*_CASE_COLUMNS).where(
        ReleaseCase.id.is_in(list({t["case"] for t in tasks}) or [uuid.uuid4()])
        & (ReleaseCase.status == CaseStatus.OPEN.value) & ReleaseCase.notices_at.is_not_null())}
    streams = await _streams_by_platform([t["platform"] for t in tasks])
    moment = now()
    outbox = [n for n in (_task_notice(streams.get(t["platform"]), t, cases[t["case"]], moment)
                          for t in tasks if t["case"] in cases) if n is not None]
    await insert_rows(Notice, outbox)
    return len(outbox)


async def write_for_cases(case_ids: list[uuid.UUID]) -> int:
    """The deactivation notices of these open cases, once; call inside the transaction that opens or
    times them. Each task of a platform with a stream gets its notice; platforms that take every
    disconnection (`ALL`) or added the number as a subject get a task and a notice of their own."""
    if not case_ids:
        return 0
    moment = now()
    cases = await where_in(
        "SELECT c.id, c.reason, c.disconnected_at, c.earliest_clear_at, p.e164 FROM release_case c"
        " JOIN phone_number p ON p.id = c.number WHERE c.status = {} AND c.notices_at IS NULL AND c.id IN ({})",
        case_ids, CaseStatus.OPEN.value)
    if not cases:
        return 0
    tasks = await where_in(
        'SELECT t.id, t."case", t.platform, t.action, t.status, a.email AS heir_email FROM release_task t'
        ' LEFT JOIN heir a ON a.id = t.heir WHERE t.status IN ({}, {}) AND t."case" IN ({})',
        [c["id"] for c in cases], TaskStatus.PENDING.value, TaskStatus.HELD.value)
    written = await _write_for(cases, tasks, moment)
    await where_in("UPDATE release_case SET notices_at = {} WHERE id IN ({})", [c["id"] for c in cases], moment)
    return written


async def write_for_new_cases(cases: list[dict], moment: dt.datetime, tasks: list[dict] | None = None) -> int:
    """:func:`write_for_cases` for open cases this transaction has just written, due now, each row with
    its number's ``e164`` and ``notices_at`` already set to ``moment``, and their open tasks as written
    (each with ``heir_email``; none for numbers no owner registered): no read back, no update."""
    return await _write_for(cases, tasks or [], moment) if cases else 0


async def _write_for(cases: list[dict], tasks: list[dict], moment: dt.datetime) -> int:
    deactivated = rules.own_event(get_settings().issuer, "identifier-deactivated")
    streams = await _streams_by_platform()
    all_platforms = {p for p, stream in streams.items() if stream["default_subjects"] == "ALL"}  # (with a stream)
    subject_streams: dict[str, set[uuid.UUID]] = {}
    stream_platform = {s["id"]: p for p, s in streams.items()}
    if stream_platform:  # subjects count only for platforms with a stream
        e164s = [c["e164"] for c in cases]
        for start in range(0, len(e164s), 1000):
            for row in await where_in("SELECT stream, e164 FROM ssf_subject WHERE e164 IN ({})",
                                      e164s[start:start + 1000]):
                if row["stream"] in stream_platform:
                    subject_streams.setdefault(row["e164"], set()).add(stream_platform[row["stream"]])
    by_case: dict[uuid.UUID, list[dict]] = {}
    for task in tasks:
        by_case.setdefault(task["case"], []).append(task)

    new_tasks: list[dict] = []
    outbox: list[dict] = []
    for case in cases:
        covered = set()
        for task in by_case.get(case["id"], []):
            covered.add(task["platform"])
            if task["status"] == TaskStatus.HELD.value:
                continue  # waits for the legacy case's decision (write_for_tasks)
            notice = _task_notice(streams.get(task["platform"]), task, case, moment)
            if notice is not None:
                outbox.append(notice)
        for platform_id in (all_platforms | subject_streams.get(case["e164"], set())) - covered:
            stream = streams.get(platform_id)
            if stream is None or not _wants(stream, deactivated):
                continue
            base = {"reason": case["reason"], "disconnected_at": rules.numeric(case["disconnected_at"]),
                    "earliest_reassign_at": rules.numeric(case["earliest_clear_at"]), "case_id": str(case["id"])}
            task = dict(id=new_id(), case=case["id"], platform=platform_id, action="unbind", created_at=moment,
                        updated_at=moment)
            new_tasks.append(task)
            outbox.append(_notice(stream, platform_id, case=case, task_id=task["id"], event=deactivated,
                                  payload={**base, "requested_action": "unbind"}, e164=case["e164"], moment=moment,
                                  deadline=case["earliest_clear_at"]))
    await insert_rows(ReleaseTask, new_tasks)
    await insert_rows(Notice, outbox)
    return len(outbox)


async def write_follow_up(case_ids: list[uuid.UUID], kind: str) -> int:
    """``cancelled`` (number restored) or ``recycled`` (number reassigned): tell every platform that
    was told of these cases. Call inside the transaction that changes the case."""
    if not case_ids:
        return 0
    issuer = get_settings().issuer
    event = (rules.own_event(issuer, "identifier-deactivation-cancelled") if kind == "cancelled"
             else rules.IDENTIFIER_RECYCLED)
    moment = now()
    told = await Notice.select(Notice.case, Notice.stream, Notice.stream.platform.as_alias("platform"),
                               Notice.case.number.e164.as_alias("e164")).where(
        Notice.case.is_in(case_ids) & Notice.event.is_in([
            rules.own_event(issuer, "identifier-deactivated"), rules.own_event(issuer, "account-handover-requested")]))
    seen = set()
    outbox = []
    streams = await _streams_by_platform()
    for row in told:
        key = (row["case"], row["stream"])
        stream = streams.get(row["platform"])
        if key in seen or stream is None or stream["id"] != row["stream"] or not _wants(stream, event):
            continue
        seen.add(key)
        outbox.append(_notice(stream, row["platform"], case={"id": row["case"]}, task_id=None, event=event,
                              payload={"case_id": str(row["case"])} if kind == "cancelled" else {},
                              e164=row["e164"], moment=moment, deadline=moment + dt.timedelta(days=30)))
    await insert_rows(Notice, outbox)
    return len(outbox)


async def write_due(limit: int = 500) -> int:
    """Timer: cases whose notice time has come (e.g. after a non-payment grace period)."""
    moment = now()
    due = [r["id"] for r in await ReleaseCase.select(ReleaseCase.id).where(
        (ReleaseCase.status == CaseStatus.OPEN.value) & ReleaseCase.notices_at.is_null()
        & (ReleaseCase.notify_at <= moment)).limit(limit)]
    if not due:
        return 0
    async with write_transaction():
        return await write_for_cases(due)


async def mark_delivered(which: Where) -> None:
    """Inside a write transaction: the notices matching ``which`` reached their platform and their tasks
    are `notified` (one statement finds and marks them, so that ``which`` can also say "still ours")."""
    moment = now()
    marked = await Notice.update({Notice.status: "delivered", Notice.delivered_at: moment,
                                  Notice.lease_until: None}).where(which).returning(Notice.id, Notice.task)
    task_ids = [r["task"] for r in marked if r["task"] is not None]
    if task_ids:
        await ReleaseTask.update({ReleaseTask.status: TaskStatus.NOTIFIED.value, ReleaseTask.updated_at: moment}).where(
            ReleaseTask.id.is_in(task_ids) & (ReleaseTask.status == TaskStatus.PENDING.value))


async def signed_tokens(rows: list[dict], alg: str) -> list[str]:
    """The notices' SETs, each signed once and kept, so every retry and poll carries the same bytes; those
    not signed yet are signed together (one hop to the signing thread) and stored in one transaction.
    Two polls at once may both sign a notice: the first signature stored wins, and the other poll hands
    out that one (an ES256 signature differs each time it is made)."""
    unsigned = [row for row in rows if not row["token"]]
    made = {}
    if unsigned:
        signed = await sets.sign_many([json.loads(row["claims"]) for row in unsigned], alg)
        async with write_transaction():
            for row, (token, kid) in zip(unsigned, signed):
                if await Notice.update({Notice.token: token, Notice.kid: kid}).where(
                        (Notice.id == row["id"]) & Notice.token.is_null()).returning(Notice.id):
                    made[row["id"]] = token
            late = [row["id"] for row in unsigned if row["id"] not in made]
            if late:
                made.update({r["id"]: r["token"] for r in await Notice.select(Notice.id, Notice.token).where(
                    Notice.id.is_in(late))})
    return [row["token"] or made[row["id"]] for row in rows]


# ---------------------------------------------------------------- poll delivery (RFC 8936)

POLL_WAIT_SECONDS = 10.0
POLL_MAX_EVENTS = 1000  # SETs in one poll response, whatever maxEvents asks
POLL_NOTED = dt.timedelta(minutes=1)  # a stream's last poll is written at most this often (/metrics reads it)


async def poll(platform: dict, stream_id: str, body: dict) -> dict:
    stream = await Stream.select().where((Stream.stream_id == stream_id) & (Stream.platform == platform["id"])).first()
    if stream is None:
        raise NotFound("no such stream")
    if stream["delivery_method"] != rules.POLL:
        raise InvalidRequest("this stream is delivered by push, not poll")
    moment = now()
    if stream["last_polled_at"] is None or moment - stream["last_polled_at"] >= POLL_NOTED:
        await Stream.update({Stream.last_polled_at: moment}).where(Stream.id == stream["id"])
    max_events = body.get("maxEvents")
    if max_events is not None and (not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 0):
        raise InvalidRequest("maxEvents is a non-negative integer", field="maxEvents")
    acks = body.get("ack") or []
    errors = body.get("setErrs") or {}
    if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
        raise InvalidRequest("ack is a list of jti", field="ack")
    if not isinstance(errors, dict) or not all(isinstance(v, dict) and isinstance(v.get("err"), str)
                                               for v in errors.values()):
        raise InvalidRequest('setErrs maps jti to {"err", "description"}', field="setErrs")
    return_immediately = body.get("returnImmediately", False)
    if not isinstance(return_immediately, bool):
        raise InvalidRequest("returnImmediately is a boolean", field="returnImmediately")

    def ids(values):
        found = []
        for value in values:
            try:
                found.append(uuid.UUID(value))
            except ValueError:
                continue
        return found

    if acks or errors:
        async with write_transaction():
            if acks:
                await mark_delivered(Notice.id.is_in(ids(acks) or [uuid.uuid4()]) & (Notice.stream == stream["id"])
                                     & (Notice.status == "pending"))
            for jti, error in errors.items():
                text = f"{error['err']}: {error.get('description', '')}"[:300]
                await Notice.update({Notice.status: "failed", Notice.last_error: text}).where(
                    Notice.id.is_in(ids([jti]) or [uuid.uuid4()]) & (Notice.stream == stream["id"])
                    & (Notice.status == "pending"))
    if max_events == 0:
        return {"sets": {}, "moreAvailable": False}
    # RFC 8936 lets the transmitter cap a response: without one, a platform polling after a large import
    # would have every pending SET read, signed and sent in one answer
    limit = min(max_events or POLL_MAX_EVENTS, POLL_MAX_EVENTS)
    deadline = asyncio.get_running_loop().time() + (0 if return_immediately else POLL_WAIT_SECONDS)
    while True:
        rows = await Notice.select().where((Notice.stream == stream["id"]) & (Notice.status == "pending")).order_by(
            Notice.created_at, Notice.id).limit(limit + 1)  # the id breaks ties: a batch writes many at once
        if rows or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.5)
    more = len(rows) > limit
    rows = rows[:limit]
    tokens = await signed_tokens(rows, stream["signing_alg"])
    return {"sets": {uuid.UUID(str(row["id"])).hex: token for row, token in zip(rows, tokens)}, "moreAvailable": more}


# ---------------------------------------------------------------- outcomes

RESULTS = {"unbound": TaskStatus.UNBOUND, "handed_over": TaskStatus.HANDED_OVER,
           "memorialized": TaskStatus.MEMORIALIZED, "deleted": TaskStatus.DELETED,
           "no_account": TaskStatus.NO_ACCOUNT, "refused": TaskStatus.REFUSED, "deferred": None}


async def report_outcome(platform: dict, case_id: object, result: str, completed_at: dt.datetime,
                         detail: str) -> tuple[dict, bool]:
    """Move the platform's tasks in the case to the reported end. Returns (outcome, created).

    The same report again is answered as before; a different final report is a conflict; ``deferred``
    keeps the tasks open and may be followed by a final one.
    """
    if result not in RESULTS:
        raise InvalidRequest(f"result is one of {', '.join(RESULTS)}", field="result")
    try:
        cid = uuid.UUID(str(case_id))
    except ValueError:
        raise NotFound("no such case") from None
    moment = now()
    async with write_transaction():
        tasks = await ReleaseTask.select(ReleaseTask.id, ReleaseTask.status).where(
            (ReleaseTask.case == cid) & (ReleaseTask.platform == platform["id"]))
        if not tasks:
            raise NotFound("no such case for this platform")
        previous = await CaseOutcome.select().where((CaseOutcome.case == cid)
                                                    & (CaseOutcome.platform == platform["id"])).first()
        if previous is not None and previous["result"] != "deferred":
            if previous["result"] == result:
                return _outcome(previous), False
            raise Conflict(f"this platform already reported {previous['result']!r} for the case")
        if previous is None:
            await CaseOutcome.insert(CaseOutcome(case=cid, platform=platform["id"], result=result,
                                                 completed_at=completed_at, detail=detail))
        else:
            await CaseOutcome.update({CaseOutcome.result: result, CaseOutcome.completed_at: completed_at,
                                      CaseOutcome.detail: detail}).where(CaseOutcome.id == previous["id"])
        status = RESULTS[result]
        if status is not None:
            await ReleaseTask.update({ReleaseTask.status: status.value, ReleaseTask.updated_at: moment}).where(
                (ReleaseTask.case == cid) & (ReleaseTask.platform == platform["id"])
                & ReleaseTask.status.is_in([TaskStatus.PENDING.value, TaskStatus.NOTIFIED.value]))
        await audit.record("case:outcome", actor=f"platform:{platform['id']}", subject=f"case:{cid}",
                           detail={"result": result})
        remaining = await ReleaseTask.count().where(
            (ReleaseTask.case == cid) & ReleaseTask.status.not_in([s.value for s in TERMINAL_TASKS]))
        case = await ReleaseCase.select(ReleaseCase.status).where(ReleaseCase.id == cid).first()
        if remaining == 0 and case["status"] == CaseStatus.OPEN.value:
            await ReleaseCase.update({ReleaseCase.status: CaseStatus.CLOSED.value, ReleaseCase.closed_at: moment}).where(
                ReleaseCase.id == cid)
            await audit.record("case:close", actor="system", subject=f"case:{cid}")
        row = await CaseOutcome.select().where((CaseOutcome.case == cid)
                                               & (CaseOutcome.platform == platform["id"])).first()
    return _outcome(row), True


def _outcome(row: dict) -> dict:
    return {"case_id": str(row["case"]), "platform_id": str(row["platform"]), "result": row["result"],
            "completed_at": row["completed_at"], "detail": row["detail"]}


async def write_recycled_for_tasks(task_ids: list[uuid.UUID]) -> int:
    """RISC `identifier-recycled` to the platforms of these open tasks (a new holder asked); call inside
    the transaction that records the request. Platforms without a stream cannot be told."""
    if not task_ids:
        return 0
    tasks = await ReleaseTask.select(ReleaseTask.id, ReleaseTask.case, ReleaseTask.platform,
                                     ReleaseTask.case.number.e164.as_alias("e164")).where(ReleaseTask.id.is_in(task_ids))
    streams = await _streams_by_platform([t["platform"] for t in tasks])
    moment = now()
    outbox = []
    for task in tasks:
        stream = streams.get(task["platform"])
        if stream is None or not _wants(stream, rules.IDENTIFIER_RECYCLED):
            continue
        outbox.append(_notice(stream, task["platform"], case={"id": task["case"]}, task_id=task["id"],
                              event=rules.IDENTIFIER_RECYCLED, payload={}, e164=task["e164"], moment=moment,
                              deadline=moment + dt.timedelta(days=30)))
    await insert_rows(Notice, outbox)
    return len(outbox)
