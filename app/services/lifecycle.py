"""Carrier events applied to numbers, exactly once: tenures, release cases and their tasks, holds.

The carrier hook (one event) and the bulk import (many disconnections) both go through
:func:`apply`, which works on a batch: a handful of queries per batch whatever its size, the domain
rules of :mod:`app.domain.release` for every decision, and one transaction for the whole batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import msgspec

from app import audit
from app.clock import now
from app.domain import legacy as legacy_rules
from app.domain import release as rules
from app.domain.numbers import Number, mask, normalize
from app.domain.release import CaseStatus, NumberEvent, Reason, TaskStatus, TenureStatus
from app.errors import AccessDenied, Conflict, Contention, HeirlineError, InvalidRequest
from app.notify import letters, notifier
from app.notify.base import Message
from app.services import notices
from app.services import legacy_alerts
from app.services.legacy import legacy_rules_status, open_for_carrier_deaths
from app.storage.engine import (
    PreparedInsert,
    any_of,
    insert_rows,
    locked_numbers,
    prepare_insert,
    read_rows,
    where_in,
    write_transaction,
)
from app.storage.ids import new_id, new_id_texts
from app.storage.tables import (
    Carrier,
    NumberEvent as NumberEventRow,
    NumberHold,
    PhoneNumber,
    ReleaseCase,
    ReleaseTask,
    Tenure,
)

log = logging.getLogger("heirline.lifecycle")
RETRIES = 3


@dataclass
class EventInput:
    """One carrier event, validated; ``key`` is its webhook-id (or a row digest for imports)."""

    type: NumberEvent
    number: Number
    key: str
    occurred_at: dt.datetime
    reason: Reason = Reason.OTHER
    line_class: rules.LineClass = rules.LineClass.RESIDENTIAL
    jurisdiction: str = ""
    aging_ends_at: dt.datetime | None = None
    subscriber_ref: str = ""
    carrier_case_id: str = ""
    new_carrier: str = ""


@dataclass
class Outcome:
    result: str  # applied | duplicate | rejected
    answer: dict | None = None
    error: HeirlineError | None = None


# ---------------------------------------------------------------- parsing


def _text(data: dict, name: str, limit: int = 100) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidRequest(f"{name} must be a string of at most {limit} characters", field=name)
    return value


def parse_payload(payload: Any, key: str, default_region: str, carrier_jurisdiction: str) -> EventInput:
    """A Standard Webhooks body ``{"type","timestamp","data"}`` as an EventInput, or InvalidRequest."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise InvalidRequest('the body must be {"type", "timestamp", "data": {...}}')
    kind = rules.parse_enum(NumberEvent, payload.get("type"), "type")
    return event_from_data(kind, payload["data"], key, default_region, carrier_jurisdiction)


TIME_FIELD = {
    NumberEvent.SUSPENDED: "suspended_at", NumberEvent.DISCONNECTED: "disconnected_at",
    NumberEvent.RESTORED: "restored_at", NumberEvent.REASSIGNED: "reassigned_at",
    NumberEvent.PORTED_OUT: "ported_at",
}


def event_from_data(kind: NumberEvent, data: dict, key: str, default_region: str,
                    carrier_jurisdiction: str) -> EventInput:
    number = normalize(data.get("phone_number"), default_region)
    event = EventInput(kind, number, key, rules.parse_time(data.get(TIME_FIELD[kind]), TIME_FIELD[kind]))
    if kind in (NumberEvent.DISCONNECTED, NumberEvent.SUSPENDED):
        event.reason = rules.parse_enum(Reason, data.get("reason"), "reason", default=Reason.OTHER)
    if kind is NumberEvent.DISCONNECTED:
        event.line_class = rules.parse_enum(rules.LineClass, data.get("line_class"), "line_class",
                                            default=rules.LineClass.RESIDENTIAL)
        jurisdiction = _text(data, "jurisdiction", 2).upper() or carrier_jurisdiction
        if len(jurisdiction) != 2 or not jurisdiction.isalpha():
            raise InvalidRequest("jurisdiction is an ISO 3166-1 alpha-2 code", field="jurisdiction")
        event.jurisdiction = jurisdiction
        if data.get("aging_ends_at"):
            event.aging_ends_at = rules.parse_time(data["aging_ends_at"], "aging_ends_at")
            if event.aging_ends_at < event.occurred_at:
                raise InvalidRequest("aging_ends_at is before disconnected_at", field="aging_ends_at")
        event.subscriber_ref = _text(data, "subscriber_ref")
        event.carrier_case_id = _text(data, "carrier_case_id")
    if kind is NumberEvent.PORTED_OUT:
        event.new_carrier = _text(data, "new_carrier")
        if not event.new_carrier:
            raise InvalidRequest("new_carrier is required", field="new_carrier")
    if event.occurred_at > now() + dt.timedelta(minutes=5):
        raise InvalidRequest(f"{TIME_FIELD[kind]} is in the future", field=TIME_FIELD[kind])
    return event


def row_key(e164: str, stripped: Sequence[str]) -> str:
    """A bulk-file row's identity, from its fields without surrounding spaces: the same row imported
    again is the same event. It leads with the number, so that rows applied in the order of their
    numbers write the key index in order too (a digest alone lands each key on a random page)."""
    return f"import:{e164}:" + hashlib.sha256("\x1f".join(stripped).encode()).hexdigest()[:40]


# ---------------------------------------------------------------- applying


async def apply(carrier: dict, events: list[EventInput]) -> list[Outcome]:
    """Apply a batch in one transaction; each event's outcome in order.

    A concurrent writer of the same numbers (PostgreSQL) makes the batch retry: the retry sees the
    other's committed work, so an event delivered twice at once is applied once.
    """
    for attempt in range(RETRIES):
        batch = _Batch(carrier, now())
        try:
            async with write_transaction():
                outcomes = await batch.run(events)
                # the owners' alerts commit with their events (and go out from the outbox): no 202 for an
                # event whose alerts could be lost, and no carrier waiting on an SMTP server
                await notifier().keep(await _owner_alerts(batch.alerts))
            break
        except (Conflict, Contention):
            if attempt == RETRIES - 1:
                raise
            log.info("batch of %d events met a concurrent writer; retrying", len(events))
    for _, legacy_id in getattr(batch, "legacy_opened", []):
        await legacy_alerts.send_due(legacy_id)
    return outcomes


@dataclass
class _Tenure:
    id: uuid.UUID
    number: uuid.UUID
    seq: int
    status: TenureStatus
    owner: dict | None = None
    new: bool = False
    changes: dict = field(default_factory=dict)


@dataclass
class _Case:
    id: uuid.UUID
    status: CaseStatus
    earliest_clear_at: dt.datetime
    blocked_until: dt.datetime | None
    tasks: list[rules.TaskView] = field(default_factory=list)
    new: bool = False


class _Batch:
    def __init__(self, carrier: dict, moment: dt.datetime):
        self.carrier = carrier
        self.carrier_id = carrier["id"]
        self.now = moment
        self.alerts: list[tuple[dict, str, Number]] = []  # (owner: id and locale, what happened, number)
        self.audit: list[audit.Entry] = []

    async def run(self, events: list[EventInput]) -> list[Outcome]:
        e164s = sorted({e.number.e164 for e in events})
        await self._take_numbers(events, e164s)
        seen = {r["webhook_id"]: r["answer"] for r in await where_in(
            "SELECT webhook_id, answer FROM number_event WHERE carrier = {} AND webhook_id IN ({})",
            [e.key for e in events], self.carrier_id)}
        await self._load()
        if any(e.type is NumberEvent.PORTED_OUT for e in events):
            for row in await Carrier.select(Carrier.name, Carrier.id):
                self.carrier_by_name[row["name"]] = self.carrier_by_name[str(row["id"])] = row["id"]

        outcomes: list[Outcome] = []
        applied: list[tuple[EventInput, dict, int]] = []
        for event in events:
            if event.key in seen:
                first = seen[event.key]  # stored JSON, or this batch's own answer
                outcomes.append(Outcome("duplicate", first if isinstance(first, dict) else json.loads(first)))
                continue
            try:
                answer = self._apply_one(event)
            except HeirlineError as exc:
                outcomes.append(Outcome("rejected", error=exc))
                continue
            seen[event.key] = answer
            applied.append((event, answer, len(outcomes)))
            outcomes.append(Outcome("applied", answer))

        await self._create_tasks()
        for event, answer, index in applied:
            answer.update(self._answer(event.number.e164, answer.pop("_case")))
            outcomes[index].answer = answer
        await self._write(applied)
        await self._forget_unused_numbers(applied)
        return outcomes

    # ---- loading

    async def _take_numbers(self, events: list[EventInput], e164s: list[str]) -> None:
        """The batch's numbers, those the registry has not seen added: the first carrier to report a
        number holds it (a number whose event is rejected is removed again)."""
        found = await where_in("SELECT id, e164, carrier FROM phone_number WHERE e164 IN ({})", e164s)
        have = {r["e164"] for r in found}
        regions = {e.number.e164: e.number.region for e in events}
        added = [dict(id=new_id(), e164=e, region=regions[e], carrier=self.carrier_id) for e in e164s if e not in have]
        await insert_rows(PhoneNumber, added, on_conflict_ignore=True)
        self.numbers = {r["e164"]: r for r in await locked_numbers(e164s, found + added)}
        # (on PostgreSQL another transaction may have added one first: its row, not this one's, stays)
        self.inserted = {row["e164"] for row in added if self.numbers[row["e164"]]["id"] == row["id"]}

    async def _load(self) -> None:
        number_ids = [n["id"] for n in self.numbers.values()]
        # (each read joins what it needs: every statement holds SQLite's one writer a turn of the loop)
        self.tenures: dict[uuid.UUID, _Tenure] = {}
        for row in await where_in(
                "SELECT t.id, t.number, t.seq, t.status, o.id AS owner_id, o.locale FROM tenure t"
                " LEFT JOIN owner o ON o.tenure = t.id AND o.status = 'active'"
                " WHERE t.ended_at IS NULL AND t.number IN ({})", number_ids):
            owner = None if row["owner_id"] is None else {"id": row["owner_id"], "locale": row["locale"]}
            self.tenures[row["number"]] = _Tenure(row["id"], row["number"], row["seq"], TenureStatus(row["status"]),
                                                  owner)
        self.cases: dict[uuid.UUID, _Case] = {}  # open case by tenure, with its tasks
        for row in await where_in(
                'SELECT c.id, c.tenure, c.earliest_clear_at, c.blocked_until, t.status AS task_status, t.action'
                ' FROM release_case c LEFT JOIN release_task t ON t."case" = c.id'
                f" WHERE c.status = '{CaseStatus.OPEN.value}' AND c.tenure IN ({{}})",
                [t.id for t in self.tenures.values()]):
            case = self.cases.get(row["tenure"])
            if case is None:
                case = self.cases[row["tenure"]] = _Case(row["id"], CaseStatus.OPEN, row["earliest_clear_at"],
                                                         row["blocked_until"])
            if row["task_status"] is not None:
                case.tasks.append(rules.TaskView(TaskStatus(row["task_status"]), row["action"]))
        self.holds = {r["number"]: r["blocked_until"] for r in await where_in(
            "SELECT number, blocked_until FROM number_hold WHERE lifted_at IS NULL AND blocked_until > {}"
            " AND number IN ({})", number_ids, self.now)}
        self.new_cases: list[tuple[dict, _Tenure]] = []
        self.cancelled_cases: list[uuid.UUID] = []
        self.carrier_updates: dict[uuid.UUID, uuid.UUID | None] = {}
        self.new_holds: list[NumberHold] = []
        self.legacy_for: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.closed_tenures: list[_Tenure] = []
        self.notify_now: list[uuid.UUID] = []
        self.recycled_cases: list[uuid.UUID] = []
        self.carrier_by_name: dict[str, uuid.UUID] = {}

    # ---- deciding

    def _apply_one(self, event: EventInput) -> dict:
        number = self.numbers[event.number.e164]
        holder = number["carrier"]
        if holder is not None and holder != self.carrier_id:
            raise AccessDenied("this number is held by another carrier")
        tenure = self.tenures.get(number["id"])
        if tenure is None:
            tenure = _Tenure(new_id(), number["id"], 1, TenureStatus.ACTIVE, new=True)
        next_status = rules.transition(tenure.status, event.type)  # InvalidState (409) when impossible
        self.tenures[number["id"]] = tenure
        tenure.status = next_status
        tenure.changes["status"] = next_status.value
        if holder is None:  # the first carrier to report a number holds it
            number["carrier"] = self.carrier_id
            self.carrier_updates[number["id"]] = self.carrier_id
        owner = tenure.owner
        subject = mask(event.number.e164)
        actor = f"carrier:{self.carrier_id}"
        case_ref: _Case | None = None

        if event.type is NumberEvent.SUSPENDED:
            self.audit.append(audit.Entry("number:suspended", actor, subject, owner and owner["id"],
                                          {"reason": event.reason.value}))
            if owner:
                self.alerts.append((owner, "suspended", event.number))
        elif event.type is NumberEvent.DISCONNECTED:
            case_ref = self._open_case(event, number, tenure)
        elif event.type is NumberEvent.RESTORED:
            case_ref = self.cases.pop(tenure.id, None)
            if case_ref is not None:
                case_ref.status = CaseStatus.CANCELLED
                case_ref.tasks = [rules.TaskView(TaskStatus.CANCELLED, t.action) if t.status in rules.OPEN_TASKS
                                  else t for t in case_ref.tasks]
                if case_ref.new:  # opened earlier in this same batch: written already cancelled
                    row = next(r for r, _ in self.new_cases if r["id"] == case_ref.id)
                    row["status"], row["closed_at"] = CaseStatus.CANCELLED.value, self.now
                else:
                    self.cancelled_cases.append(case_ref.id)
            self.audit.append(audit.Entry("case:cancel" if case_ref else "number:restored", actor, subject,
                                          owner and owner["id"], {"case": str(case_ref.id) if case_ref else None}))
        elif event.type is NumberEvent.REASSIGNED:
            case_ref = self.cases.pop(tenure.id, None)
            tenure.changes["ended_at"] = event.occurred_at
            self.closed_tenures.append(tenure)
            successor = _Tenure(new_id(), number["id"], tenure.seq + 1, TenureStatus.ACTIVE, new=True)
            successor.changes["status"] = TenureStatus.ACTIVE.value
            successor.changes["started_at"] = event.occurred_at  # the holder changed then (recycling checks)
            self.tenures[number["id"]] = successor
            early = bool(case_ref and event.occurred_at < case_ref.earliest_clear_at)
            if case_ref is not None:
                self.recycled_cases.append(case_ref.id)
            self.audit.append(audit.Entry("number:reassigned", actor, subject, owner and owner["id"],
                                          {"case": str(case_ref.id) if case_ref else None, "before_clearance": early}))
        elif event.type is NumberEvent.PORTED_OUT:
            successor_carrier = self.carrier_by_name.get(event.new_carrier)  # None: the next to report holds it
            number["carrier"] = successor_carrier
            self.carrier_updates[number["id"]] = successor_carrier
            self.audit.append(audit.Entry("number:ported_out", actor, subject, owner and owner["id"],
                                          {"new_carrier": event.new_carrier[:100]}))
        return {"_case": case_ref}

    def _open_case(self, event: EventInput, number: dict, tenure: _Tenure) -> _Case:
        timing = rules.release_timing(event.jurisdiction, event.reason, event.line_class, event.occurred_at,
                                      event.aging_ends_at)
        case = _Case(new_id(), CaseStatus.OPEN, timing.earliest_clear_at, timing.blocked_until, new=True)
        self.cases[tenure.id] = case
        row = _case_row(case.id, number["id"], tenure.id, self.carrier_id, event, timing, self.now)
        self.new_cases.append((row, tenure))
        if timing.notify_at <= self.now:
            self.notify_now.append(case.id)
        if timing.blocked_until:
            self.new_holds.append(_hold_row(number["id"], self.carrier_id, event, timing, self.now))
            self.holds[number["id"]] = max(timing.blocked_until, self.holds.get(number["id"], timing.blocked_until))
        owner = tenure.owner
        if owner and event.reason is Reason.SUBSCRIBER_DECEASED:
            self.legacy_for.append((owner["id"], case.id))
        if owner:
            self.alerts.append((owner, "disconnected", event.number))
        self.audit.append(audit.Entry(
            "case:open", f"carrier:{self.carrier_id}", mask(event.number.e164), owner and owner["id"],
            {"case": str(case.id), "reason": event.reason.value, "jurisdiction": event.jurisdiction,
             "earliest_clear_at": timing.earliest_clear_at.isoformat(), "notify_at": timing.notify_at.isoformat()}))
        return case

    async def _create_tasks(self) -> None:
        """One task per binding of each closing tenure, from the binding's disposition; a handover,
        memorial or deletion waits for a legacy case (see :func:`app.domain.legacy.task_plan`)."""
        owners: dict[uuid.UUID, list[dict]] = {}
        for row, tenure in self.new_cases:
            if tenure.owner:
                owners.setdefault(tenure.owner["id"], []).append(row)
        self.new_tasks: list[dict] = []
        if not owners:
            return
        bindings = await where_in("SELECT id, owner, platform, disposition, heir FROM binding WHERE owner IN ({})",
                                  list(owners))
        legacy_status = await legacy_rules_status(list(owners))
        cases = {c.id: c for c in self.cases.values()}
        for binding in bindings:
            for row in owners[binding["owner"]]:
                action, held = legacy_rules.task_plan(
                    rules.requested_action(binding["disposition"]),
                    deceased=row["reason"] == Reason.SUBSCRIBER_DECEASED.value,
                    legacy=legacy_status.get(binding["owner"]))
                status = TaskStatus.HELD if held else TaskStatus.PENDING
                if row["status"] == CaseStatus.CANCELLED.value:
                    status = TaskStatus.CANCELLED
                self.new_tasks.append(dict(id=new_id(), case=row["id"], binding=binding["id"], platform=binding["platform"],
                                           action=action, heir=binding["heir"], status=status.value,
                                           created_at=self.now, updated_at=self.now))
                if row["id"] in cases:
                    cases[row["id"]].tasks.append(rules.TaskView(status, action))

    def _answer(self, e164: str, case: _Case | None) -> dict:
        number = self.numbers[e164]
        tenure = self.tenures[number["id"]]
        current = self.cases.get(tenure.id)
        view = None
        if current is not None:
            view = rules.CaseView(str(current.id), current.status, current.earliest_clear_at, current.blocked_until)
        answer = rules.clearance(known=True, case=view, tasks=current.tasks if current else [],
                                 hold_until=self.holds.get(number["id"]), now=self.now)
        touched = case or current
        return {
            "case_id": str(touched.id) if touched else None,
            "status": answer.status.value,
            "earliest_clear_at": _iso(touched.earliest_clear_at) if touched else None,
        }

    # ---- writing

    async def _write(self, applied: list[tuple[EventInput, dict, int]]) -> None:
        by_carrier: dict[uuid.UUID | None, list[uuid.UUID]] = {}
        for number_id, carrier_id in self.carrier_updates.items():
            by_carrier.setdefault(carrier_id, []).append(number_id)
        for carrier_id, number_ids in by_carrier.items():
            await where_in("UPDATE phone_number SET carrier = {} WHERE id IN ({})", number_ids, carrier_id)
        new_tenures, changed = [], []
        for tenure in list(self.tenures.values()) + self.closed_tenures:
            if tenure.new:
                new_tenures.append(dict(id=tenure.id, number=tenure.number, seq=tenure.seq, status=tenure.status.value,
                                        started_at=tenure.changes.get("started_at", self.now),
                                        ended_at=tenure.changes.get("ended_at")))
            elif tenure.changes:
                changed.append(tenure)
        # closing tenures first: a successor's (number, seq) must not collide; one statement for every
        # tenure given the same changes (a burst of disconnections: all of them)
        alike: dict[tuple, list[uuid.UUID]] = {}
        for tenure in changed:
            alike.setdefault(tuple(sorted(tenure.changes.items())), []).append(tenure.id)
        for changes, tenure_ids in alike.items():
            columns = ", ".join(f"{name} = {{}}" for name, _ in changes)  # names from this module, not input
            await where_in(f"UPDATE tenure SET {columns} WHERE id IN ({{}})", tenure_ids, *(v for _, v in changes))
        await insert_rows(Tenure, new_tenures)
        due = self._due_now()
        await insert_rows(ReleaseCase, [row for row, _ in self.new_cases])
        await insert_rows(ReleaseTask, self.new_tasks)
        if self.cancelled_cases:
            await ReleaseCase.update({ReleaseCase.status: CaseStatus.CANCELLED.value, ReleaseCase.closed_at: self.now}
                                     ).where(ReleaseCase.id.is_in(self.cancelled_cases))
            await ReleaseTask.update({ReleaseTask.status: TaskStatus.CANCELLED.value, ReleaseTask.updated_at: self.now}
                                     ).where(ReleaseTask.case.is_in(self.cancelled_cases)
                                             & ReleaseTask.status.is_in([s.value for s in rules.OPEN_TASKS]))
        await insert_rows(NumberHold, self.new_holds)
        self.legacy_opened = await open_for_carrier_deaths(self.legacy_for, self.now)
        for owner_id, legacy_id in self.legacy_opened:
            self.audit.append(audit.Entry("legacy:open", f"carrier:{self.carrier_id}", f"legacy:{legacy_id}",
                                          owner_id, {"source": "carrier_event"}))
        await insert_rows(NumberEventRow, [
            dict(carrier=self.carrier_id, webhook_id=event.key, type=event.type.value, e164=event.number.e164,
                 answer=_dump(answer), received_at=self.now) for event, answer, _ in applied])
        await audit.record_many(self.audit)
        # the durable outbox: notices commit with the cases and tasks they serve, or not at all
        await notices.write_for_new_cases(due, self.now, await self._due_tasks(due))
        await notices.write_follow_up(self.cancelled_cases, "cancelled")
        await notices.write_follow_up(self.recycled_cases, "recycled")

    def _due_now(self) -> list[dict]:
        """The cases this batch opens whose notices are due now and that are still open, marked told (their
        notices are written with them): as :func:`notices.write_for_new_cases` takes them."""
        due_ids = set(self.notify_now)
        e164_of = {number["id"]: e164 for e164, number in self.numbers.items()}
        due = []
        for row, _ in self.new_cases:
            if row["id"] in due_ids and row["status"] == CaseStatus.OPEN.value:
                row["notices_at"] = self.now
                due.append(dict(id=row["id"], reason=row["reason"], disconnected_at=row["disconnected_at"],
                                earliest_clear_at=row["earliest_clear_at"], e164=e164_of[row["number"]]))
        return due

    async def _due_tasks(self, due: list[dict]) -> list[dict]:
        """The open tasks of those cases, as written, each with its heir's e-mail (handovers)."""
        ids = {case["id"] for case in due}
        tasks = [task for task in self.new_tasks if task["case"] in ids
                 and task["status"] in (TaskStatus.PENDING.value, TaskStatus.HELD.value)]
        heirs = [task["heir"] for task in tasks if task["heir"] is not None]
        emails = {r["id"]: r["email"] for r in await where_in("SELECT id, email FROM heir WHERE id IN ({})", heirs)}
        return [{**task, "heir_email": emails.get(task["heir"])} for task in tasks]

    async def _forget_unused_numbers(self, applied: list[tuple[EventInput, dict, int]]) -> None:
        """A number first seen in a rejected event leaves no trace: it stays `unknown`."""
        used = {event.number.e164 for event, _, _ in applied}
        unused = [e for e in self.inserted if e not in used]
        if unused:
            await where_in("DELETE FROM phone_number WHERE e164 IN ({})", unused)


# ---------------------------------------------------------------- bulk

LOOKUP = 5000  # keys per lookup statement (SQLite allows 32,766 variables, PostgreSQL 32,767)
Id = uuid.UUID | str  # the bulk path writes ids as text (see new_id_texts)


@dataclass
class BulkPlan:
    """A batch of a file's events as :func:`plan_bulk` made it ready for :func:`apply_planned`."""

    carrier: dict
    events: list[EventInput]
    first: _FirstCases | None


async def plan_bulk(carrier: dict, events: list[EventInput]) -> BulkPlan:
    """A file's worth of events (the bulk import), planned outside any transaction; :func:`apply_planned`
    writes the plan and answers each event's outcome in order. The import plans a batch while the one
    before it is written.

    Most rows of a carrier's monthly file disconnect numbers the registry has never seen: no holder,
    no owner, no bindings. Those open their cases set-wise: their rows and statements built here, then
    written with a handful of statements in one short transaction. Every other event (a known number, a
    number named twice in the batch, any other event type) goes through :func:`apply` in batches of
    1,000, in file order. Both take their decisions from :mod:`app.domain.release`. A plan that a write
    since has made stale (a number it took for new now exists) costs a retry, not a wrong row: see
    :func:`_open_first_cases`."""
    named = Counter(e.number.e164 for e in events)
    first = [(i, e) for i, e in enumerate(events) if e.type is NumberEvent.DISCONNECTED and named[e.number.e164] == 1]
    return BulkPlan(carrier, events, await _plan_first_cases(carrier, first, now()) if first else None)


async def apply_planned(bulk: BulkPlan) -> list[Outcome]:
    """The second half of :func:`plan_bulk`: the planned first cases written, then every other event."""
    outcomes: list[Outcome | None] = [None] * len(bulk.events)
    if (plan := bulk.first) is not None:
        for i in plan.duplicates:
            outcomes[i] = Outcome("duplicate")
        for i, answer in (await _open_first_cases_retrying(plan)).items():
            outcomes[i] = Outcome("applied", answer)
    rest = [i for i, outcome in enumerate(outcomes) if outcome is None]
    for start in range(0, len(rest), 1000):
        part = rest[start:start + 1000]
        for i, outcome in zip(part, await apply(bulk.carrier, [bulk.events[i] for i in part]), strict=True):
            outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]


async def _open_first_cases_retrying(plan: _FirstCases) -> dict[int, dict]:
    if not plan.numbers:
        return {}
    for attempt in range(RETRIES):
        try:
            async with write_transaction():
                return await _open_first_cases(plan, check=attempt > 0)
        except (Conflict, Contention):
            if attempt == RETRIES - 1:
                raise
            log.info("bulk batch of %d new numbers met a concurrent writer; retrying", len(plan.numbers))
    raise AssertionError("unreachable")


@dataclass
class _FirstCases:
    """What :func:`_plan_first_cases` found and built: row lists aligned with ``fresh``, and the
    statements that write them all (``writes``)."""

    carrier_id: uuid.UUID
    moment: dt.datetime
    duplicates: list[int]
    fresh: list[tuple[int, EventInput]]
    numbers: list[dict]
    tenures: list[dict]
    cases: list[dict]
    holds: list[dict | None]
    answers: list[dict]
    writes: _FirstCaseWrites | None = None


@dataclass
class _FirstCaseWrites:
    """The inserts that open some of a plan's first cases (all of them, unless a retry leaves some
    out), what the audit entry says of them, and the cases due to be told to platforms now."""

    inserts: list[PreparedInsert]
    case_ids: list[str]
    told: list[dict]


async def _plan_first_cases(carrier: dict, events: list[tuple[int, EventInput]],
                            moment: dt.datetime) -> _FirstCases:
    """Outside any transaction (SQLite's one writer is not held while Python builds rows): which events
    are duplicates, which numbers the registry has not seen, the rows those would get, and the
    statements that write them.

    Events already applied are duplicates (their numbers exist: an event row is written only with its
    number, and numbers are never deleted once used). Numbers not in the registry get the number, a
    first tenure, the release case, any hold and the event row. Each distinct (jurisdiction, reason,
    line class, times) is timed once by :func:`app.domain.release.release_timing`. The event loop is
    let go every thousand rows, for the batch being written meanwhile.
    """
    carrier_id = carrier["id"]
    e164s = sorted(e.number.e164 for _, e in events)
    known = await _known_numbers(e164s)
    seen: set[str] = set()
    again = sorted(e.key for _, e in events if e.number.e164 in known)
    for start in range(0, len(again), LOOKUP):
        condition, args = any_of("webhook_id", again[start:start + LOOKUP])
        seen.update(r["webhook_id"] for r in await read_rows(
            f"SELECT webhook_id FROM number_event WHERE carrier = {{}} AND {condition}", carrier_id, *args))
    duplicates = [i for i, e in events if e.key in seen]
    fresh = sorted(((i, e) for i, e in events if e.number.e164 not in known),
                   key=lambda pair: pair[1].number.e164)  # the numbers' unique index takes them in order
    status = rules.transition(TenureStatus.ACTIVE, NumberEvent.DISCONNECTED).value
    timed: dict[tuple, tuple[rules.ReleaseTiming, dict]] = {}
    plan = _FirstCases(carrier_id, moment, duplicates, fresh, [], [], [], [], [])
    ids = zip(new_id_texts(len(fresh)), new_id_texts(len(fresh)), new_id_texts(len(fresh)))
    for done, ((_, event), (number_id, tenure_id, case_id)) in enumerate(zip(fresh, ids), 1):
        moments = (event.jurisdiction, event.reason, event.line_class, event.occurred_at, event.aging_ends_at)
        if (found := timed.get(moments)) is None:
            timing = rules.release_timing(*moments)
            view = rules.CaseView("", CaseStatus.OPEN, timing.earliest_clear_at, timing.blocked_until)
            answer = rules.clearance(known=True, case=view, tasks=[], hold_until=timing.blocked_until, now=moment)
            found = timed[moments] = timing, {"status": answer.status.value,
                                              "earliest_clear_at": _iso(timing.earliest_clear_at)}
        timing, answer = found
        plan.numbers.append(dict(id=number_id, e164=event.number.e164, region=event.number.region,
                                 carrier=carrier_id, created_at=moment))
        plan.tenures.append(dict(id=tenure_id, number=number_id, seq=1, status=status, started_at=moment,
                                 ended_at=None))
        case = _case_row(case_id, number_id, tenure_id, carrier_id, event, timing, moment)
        if timing.notify_at <= moment:
            case["notices_at"] = moment  # written with the case (write_for_new_cases)
        plan.cases.append(case)
        plan.holds.append(_hold_row(number_id, carrier_id, event, timing, moment) if timing.blocked_until else None)
        plan.answers.append({"case_id": case_id, **answer})
        if done % 1000 == 0:
            await asyncio.sleep(0)
    plan.writes = await _first_case_writes(plan, range(len(fresh)))
    return plan


async def _first_case_writes(plan: _FirstCases, keep: Sequence[int]) -> _FirstCaseWrites:
    """The inserts for the plan's first cases at positions ``keep``: its numbers, tenures, cases and
    holds in the order of their numbers, its events in the order of their keys (the (carrier,
    webhook_id) index in order)."""
    moment, inserts = plan.moment, []
    for table, rows in ((PhoneNumber, plan.numbers), (Tenure, plan.tenures), (ReleaseCase, plan.cases)):
        inserts.append(prepare_insert(table, [rows[k] for k in keep]))
        await asyncio.sleep(0)
    inserts.append(prepare_insert(NumberHold, [hold for k in keep if (hold := plan.holds[k]) is not None]))
    event_rows = []
    by_key = sorted(keep, key=lambda k: plan.fresh[k][1].key)
    for k, event_id in zip(by_key, new_id_texts(len(by_key))):
        event = plan.fresh[k][1]
        event_rows.append(dict(id=event_id, carrier=plan.carrier_id, webhook_id=event.key, type=event.type.value,
                               e164=event.number.e164, received_at=moment, answer=_dump(plan.answers[k])))
    inserts.append(prepare_insert(NumberEventRow, event_rows))
    told = [dict(id=case["id"], reason=case["reason"], disconnected_at=case["disconnected_at"],
                 earliest_clear_at=case["earliest_clear_at"], e164=plan.numbers[k]["e164"])
            for k in keep if (case := plan.cases[k])["notices_at"] is not None]
    return _FirstCaseWrites(inserts, [plan.cases[k]["id"] for k in keep], told)


async def _known_numbers(e164s: list[str]) -> set[str]:
    """Which of these numbers the registry holds (inside a write transaction, as it sees them: on
    PostgreSQL the read joins it; SQLite's reader sees what its one writer sees before it writes)."""
    known: set[str] = set()
    for start in range(0, len(e164s), LOOKUP):
        condition, args = any_of("e164", e164s[start:start + LOOKUP])
        known.update(r["e164"] for r in await read_rows(f"SELECT e164 FROM phone_number WHERE {condition}", *args))
    return known


async def _open_first_cases(plan: _FirstCases, *, check: bool) -> dict[int, dict]:
    """Inside a write transaction: write the planned first cases, each event's answer by position.

    A number some other writer created since the plan (a hook event, another import) makes the
    numbers' unique index refuse the batch (Conflict), which rolls back whole; tried again with
    ``check``, the numbers that now exist are left out (to :func:`apply`) and the inserts built again
    for the rest. Checking every batch first instead would read back each of its numbers, for a race
    that seldom happens.
    """
    appeared = await _known_numbers([n["e164"] for n in plan.numbers]) if check else set()
    keep = [k for k, number in enumerate(plan.numbers) if number["e164"] not in appeared]
    if not keep:
        return {}
    writes = plan.writes if not appeared and plan.writes is not None else await _first_case_writes(plan, keep)
    for insert in writes.inserts:
        await insert.write()
    await audit.record_many([audit.Entry(
        "case:open_many", f"carrier:{plan.carrier_id}", f"{len(keep)} numbers", None,
        {"cases": len(keep), "source": "bulk import",
         "case_ids_sha256": hashlib.sha256("\n".join(sorted(writes.case_ids)).encode()).hexdigest()})])
    await notices.write_for_new_cases(writes.told, plan.moment)
    return {plan.fresh[k][0]: plan.answers[k] for k in keep}


def _case_row(case_id: Id, number_id: Id, tenure_id: Id, carrier_id: Id, event: EventInput,
              timing: rules.ReleaseTiming, moment: dt.datetime) -> dict:
    """The release case a disconnection opens, as the row written."""
    return dict(
        id=case_id, number=number_id, tenure=tenure_id, carrier=carrier_id, reason=event.reason.value,
        jurisdiction=event.jurisdiction, line_class=event.line_class.value, disconnected_at=event.occurred_at,
        earliest_clear_at=timing.earliest_clear_at, notify_at=timing.notify_at, blocked_until=timing.blocked_until,
        status=CaseStatus.OPEN.value, subscriber_ref=event.subscriber_ref, carrier_case_id=event.carrier_case_id,
        opened_at=moment, closed_at=None, notices_at=None,
    )


def _hold_row(number_id: Id, carrier_id: Id, event: EventInput, timing: rules.ReleaseTiming,
              moment: dt.datetime) -> dict:
    """The hold a high-risk disconnection puts on its number."""
    return dict(id=new_id(), number=number_id, reason=f"carrier event: {event.reason.value}",
                blocked_until=timing.blocked_until, set_by=f"carrier:{carrier_id}", created_at=moment, lifted_at=None)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _dump(answer: dict) -> str:
    return msgspec.json.encode(answer).decode()


# ---------------------------------------------------------------- alerts to owners

async def _owner_alerts(alerts: list[tuple[dict, str, Number]]) -> list[Message]:
    """The messages telling each owner on every channel: e-mail and second numbers, and for a suspension
    the number too. Read inside the batch's transaction."""
    if not alerts:
        return []
    owner_ids = list({owner["id"] for owner, _, _ in alerts})
    contacts: dict[uuid.UUID, list[dict]] = {}
    for row in await where_in("SELECT owner, kind, address FROM contact_channel WHERE owner IN ({})", owner_ids):
        contacts.setdefault(row["owner"], []).append(row)
    messages = []
    for owner, kind, number in alerts:
        targets = [(c["address"], "email" if c["kind"] == "email" else "sms") for c in contacts.get(owner["id"], [])]
        if kind == "suspended":
            targets.append((number.e164, "sms"))
        messages += [letters.compose(f"number_{kind}", owner["locale"] or "zh", address, channel,
                                     number=mask(number.e164)) for address, channel in targets]
    return messages

