"""The bulk import's set-wise path for numbers the registry has never seen (``lifecycle.plan_bulk``):
it must store exactly what the carrier hook stores for the same event, leave every other row to the
general path, and come out whole when another writer gets in first."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import io
import json

import pytest

from app import audit
from app.services import carriers, imports, lifecycle, streams
from app.storage.tables import AuditEvent, Notice, NumberEvent, NumberHold, PhoneNumber, ReleaseCase, ReleaseTask, Tenure
from tests.support import make_carrier, platform_id, send_event, sign_up

WHEN = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)).replace(microsecond=0).isoformat()
LATER = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=120)).replace(microsecond=0).isoformat()
# (reason, line class, aging_ends_at): immediate notices, a grace period, a hold, a carrier's own date
KINDS = [("voluntary", "residential", ""), ("non_payment", "residential", ""), ("fraud", "business", ""),
         ("voluntary", "business", LATER)]
CASE_FIELDS = ["reason", "jurisdiction", "line_class", "disconnected_at", "earliest_clear_at", "notify_at",
               "blocked_until", "status", "subscriber_ref", "carrier_case_id", "closed_at"]


async def import_rows(carrier, rows: list[str]) -> imports.ImportSummary:
    text = "phone_number,disconnected_at,reason,aging_ends_at,line_class\n" + "\n".join(rows) + "\n"
    return await imports.import_disconnections(await carriers.get(carrier.id), io.StringIO(text, newline=""))


async def stored(e164: str) -> dict:
    """Everything a disconnection leaves about one number, without its ids."""
    number = await PhoneNumber.select().where(PhoneNumber.e164 == e164).first()
    tenure = await Tenure.select(Tenure.seq, Tenure.status, Tenure.ended_at).where(Tenure.number == number["id"])
    case = await ReleaseCase.select().where(ReleaseCase.number == number["id"]).first()
    holds = await NumberHold.select(NumberHold.blocked_until, NumberHold.reason, NumberHold.set_by).where(
        NumberHold.number == number["id"])
    [event] = await NumberEvent.select(NumberEvent.type, NumberEvent.answer).where(NumberEvent.e164 == e164)
    answer = json.loads(event["answer"])
    assert answer.pop("case_id") == str(case["id"])
    tasks = await ReleaseTask.select(ReleaseTask.action, ReleaseTask.status).where(ReleaseTask.case == case["id"])
    notices = await Notice.select(Notice.event).where(Notice.case == case["id"])
    return {"region": number["region"], "carrier": number["carrier"], "tenures": tenure,
            "case": {k: case[k] for k in CASE_FIELDS}, "told": case["notices_at"] is not None,
            "holds": holds, "type": event["type"], "answer": answer, "tasks": tasks,
            "notices": sorted(n["event"] for n in notices)}


async def test_a_first_disconnection_imported_is_stored_as_the_hook_stores_it(client, db):
    carrier = await make_carrier()
    await streams.add_platform("Renewal App", poll=True, all_subjects=True)  # told of every disconnection
    rows = []
    for n, (reason, line_class, aging) in enumerate(KINDS):
        hooked, imported = f"+861390000{n:04d}", f"+861370000{n:04d}"
        response = await send_event(client, carrier, "number.disconnected", hooked, disconnected_at=WHEN,
                                    reason=reason, line_class=line_class, aging_ends_at=aging or None)
        assert response.status_code == 202, response.text
        rows.append(f"{imported},{WHEN},{reason},{aging},{line_class}")
    summary = await import_rows(carrier, rows)
    assert (summary.applied, summary.rejected_count) == (len(KINDS), 0)
    for n in range(len(KINDS)):
        by_hook, by_import = await stored(f"+861390000{n:04d}"), await stored(f"+861370000{n:04d}")
        assert by_import == by_hook, KINDS[n]
    assert (await stored("+8613700000000"))["notices"]  # the ALL platform was told of the imported number
    assert (await stored("+8613700000002"))["holds"]  # fraud holds the number


async def test_known_numbers_and_numbers_named_twice_take_the_general_path(client, db):
    carrier, other = await make_carrier(), await make_carrier("Another Test", "CN")
    owner = await sign_up(client, "+8613800138000")
    response = await client.post("/v1/me/bindings", headers=owner.headers, json={
        "platform_id": await platform_id(client, "wechat"), "binding_types": ["login"], "disposition": "unbind"})
    assert response.status_code == 201, response.text
    assert (await send_event(client, other, "number.suspended", "+8613900139000")).status_code == 202
    summary = await import_rows(carrier, [
        f"+8613800138000,{WHEN},voluntary,,residential",   # line 2: an owner's number: a task per binding
        f"+8613700137000,{WHEN},voluntary,,residential",   # line 3: never seen
        f"+8613600136000,{WHEN},voluntary,,residential",   # line 4: named twice ...
        f"+8613600136000,{WHEN},fraud,,residential",       # line 5: ... so the second is impossible
        f"+8613900139000,{WHEN},voluntary,,residential",   # line 6: another carrier holds it
        f"+8613500135000,{WHEN},voluntary,,residential",   # line 7: never seen
    ])
    assert (summary.rows, summary.applied, summary.duplicates, summary.rejected_count) == (6, 4, 0, 2)
    assert [line for line, _ in summary.rejected] == [5, 6]
    assert "held by another carrier" in summary.rejected[1][1]
    owner_case = await ReleaseCase.select().where(ReleaseCase.number.e164 == "+8613800138000").first()
    assert [t["action"] for t in await ReleaseTask.select().where(ReleaseTask.case == owner_case["id"])] == ["unbind"]
    assert await ReleaseCase.count().where(ReleaseCase.number.e164 == "+8613600136000") == 1
    # one entry for the batch's first cases (lines 3 and 7), naming them by digest; the others one each
    [entry] = await AuditEvent.select().where(AuditEvent.action == "case:open_many")
    first = sorted(str(r["id"]) for r in await ReleaseCase.select(ReleaseCase.id).where(
        ReleaseCase.number.e164.is_in(["+8613700137000", "+8613500135000"])))
    detail = json.loads(entry["detail"])
    assert detail["cases"] == 2 and detail["case_ids_sha256"] == hashlib.sha256("\n".join(first).encode()).hexdigest()
    assert await AuditEvent.count().where(AuditEvent.action == "case:open") == 2  # lines 2 and 4
    assert (await audit.verify()).ok
    again = await import_rows(carrier, [f"+8613700137000,{WHEN},voluntary,,residential",
                                        f"+8613800138000,{WHEN},voluntary,,residential"])
    assert (again.applied, again.duplicates) == (0, 2)


@pytest.mark.parametrize("blind_checks", [0, 1])
async def test_a_number_another_writer_created_meanwhile_goes_the_general_path(client, db, monkeypatch, blind_checks):
    """The plan is made outside the transaction, so another writer may create one of its numbers before
    the batch is written: the numbers' unique index refuses the batch, which rolls back whole and is tried
    again with a check of its numbers (on PostgreSQL one may appear even after that check: the same
    again). Every way ends on the general path for that number."""
    carrier = await make_carrier()
    assert (await send_event(client, carrier, "number.suspended", "+8613700137000")).status_code == 202
    real_read, lookups = lifecycle.read_rows, []

    async def blind(sql, *args):  # as if the number appeared after the plan's lookup (and the first check)
        rows = await real_read(sql, *args)
        if sql.startswith("SELECT e164 FROM phone_number"):
            lookups.append(sql)
            if len(lookups) <= 1 + blind_checks:
                return [r for r in rows if r["e164"] != "+8613700137000"]
        return rows

    real_open, attempts = lifecycle._open_first_cases, []

    async def counted(plan, *, check):
        attempts.append((len(plan.numbers), check))
        return await real_open(plan, check=check)

    monkeypatch.setattr(lifecycle, "read_rows", blind)
    monkeypatch.setattr(lifecycle, "_open_first_cases", counted)
    summary = await import_rows(carrier, [f"+8613700137000,{WHEN},voluntary,,residential",
                                          f"+8613600136000,{WHEN},voluntary,,residential"])
    assert (summary.applied, summary.rejected_count) == (2, 0)
    # both planned as new, written unchecked first; each conflict made it try again, checking
    assert attempts == [(2, False)] + [(2, True)] * (blind_checks + 1)
    assert len(lookups) == 2 + blind_checks  # the plan's, then one per checked attempt
    # nothing of a rolled-back attempt is left: one case each, the suspended number's from its own tenure
    assert await ReleaseCase.count() == 2 and await PhoneNumber.count() == 2
    assert await Tenure.count().where(Tenure.number.e164 == "+8613700137000") == 1
    [entry] = await AuditEvent.select().where(AuditEvent.action == "case:open_many")
    assert json.loads(entry["detail"])["cases"] == 1


async def test_an_import_refreshes_the_planner_statistics_as_it_grows_the_tables(db, monkeypatch):
    """PostgreSQL would plan each batch's lookups as whole-table scans until autovacuum caught up."""
    calls = []
    real = imports.refresh_statistics

    async def counted(*tables):
        calls.append(tables)
        await real(*tables)

    monkeypatch.setattr(imports, "refresh_statistics", counted)
    statistics = imports._Statistics()
    for written in (0, 3000, imports.BATCH, imports.BATCH + 1, 2 * imports.BATCH, 3 * imports.BATCH):
        await statistics.refresh(written)
    await statistics.refresh(3 * imports.BATCH + 10, final=True)
    await statistics.refresh(3 * imports.BATCH + 10, final=True)
    assert len(calls) == 3 and set(calls[0]) >= {"phone_number", "number_event"}  # 1, 2 batches, then the end
    small = imports._Statistics()
    await small.refresh(10, final=True)  # a small file changes the statistics too little to pay for it
    assert len(calls) == 3  # (on PostgreSQL each call ran ANALYZE on the tables)


async def test_rows_are_applied_in_the_order_of_their_numbers_and_rejections_reported_by_line(db, monkeypatch):
    """Sorted, every index the import writes grows at one end; the rejections kept in detail are still
    those of the first lines, whatever their numbers."""
    monkeypatch.setattr(imports, "BATCH", 3)
    monkeypatch.setattr(imports, "MAX_REPORTED", 2)
    carrier = await make_carrier()
    good = [f"+86137{n:08d}" for n in (9, 1, 7, 3, 5, 2, 8)]  # lines 2-8, not in order
    rows = [f"{e164},{WHEN},voluntary,,residential" for e164 in good]
    rows += ["+8613500000000,yesterday,voluntary,,residential",  # line 9: a bad time, the lowest number
             "+8613400000000,,voluntary,,residential",  # line 10: no time, lower still
             f"+8613700000004,{WHEN},voluntary,,residential,extra"]  # line 11: six fields
    summary = await import_rows(carrier, rows)
    assert (summary.rows, summary.applied, summary.rejected_count) == (10, 7, 3)
    assert [line for line, _ in summary.rejected] == [9, 10]  # the first two lines, not the first two numbers
    written = [r["e164"] for r in await PhoneNumber.select(PhoneNumber.e164).order_by(PhoneNumber.id)]
    assert written == sorted(good)  # ids are time-ordered: the numbers were written in their order
    keys = [r["webhook_id"] for r in await NumberEvent.select(NumberEvent.webhook_id).order_by(NumberEvent.id)]
    assert [key.split(":")[1] for key in keys] == sorted(good)


async def test_a_file_imported_under_the_old_keys_still_reimports_as_duplicates(db):
    """Keys used to be import:<digest>; the migration puts the number in front of the same digest."""
    import importlib

    migration = importlib.import_module("migrations.heirline_2026_11_24t07_00_00_000000")
    carrier = await make_carrier()
    rows = [f"+8613700137000,{WHEN},voluntary,,residential", f"+8613600136000,{WHEN},non_payment,,business"]
    assert (await import_rows(carrier, rows)).applied == 2
    for event in await NumberEvent.select(NumberEvent.id, NumberEvent.webhook_id):  # as the old code wrote them
        await NumberEvent.update({NumberEvent.webhook_id: "import:" + event["webhook_id"].rsplit(":", 1)[1]}).where(
            NumberEvent.id == event["id"])
    await NumberEvent.raw(migration.REKEY)
    again = await import_rows(carrier, rows)
    assert (again.applied, again.duplicates, again.rejected_count) == (0, 2, 0)
    assert await NumberEvent.count() == 2


@pytest.mark.parametrize("second_process", [False, True])
async def test_a_large_file_parsed_by_a_second_process_comes_out_the_same(db, monkeypatch, second_process):
    """From PARSER_FROM records a second process parses while this one writes: the same outcome, the
    same rejections by line."""
    monkeypatch.setattr(imports, "BATCH", 4)
    monkeypatch.setattr(imports, "PARSER_FROM", 0 if second_process else 10**9)
    started = []
    real_pool = imports.ProcessPoolExecutor

    def pool(*args, **kwargs):
        started.append(args)
        assert kwargs["initializer"] is gc.disable  # the parser does nothing else: no collector
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(imports, "ProcessPoolExecutor", pool)
    carrier = await make_carrier()
    good = [f"+86137{n:08d}" for n in (9, 1, 7, 3, 5, 2, 8, 4, 6)]
    rows = [f"{e164},{WHEN},voluntary,,residential" for e164 in good]
    rows[3] = f"+8613700000003,{WHEN},unknown,,residential"  # line 5: no such reason
    rows += [f"+861370000000,{WHEN},voluntary,,residential",  # line 11: too short to be a mobile number
             f"+8613700000001,{WHEN},fraud,,residential"]  # line 12: a second disconnection of a number
    summary = await import_rows(carrier, rows)
    assert (summary.rows, summary.applied, summary.rejected_count) == (11, 8, 3)
    assert [line for line, _ in summary.rejected] == [5, 11, 12]
    assert "reason" in summary.rejected[0][1] and "valid" in summary.rejected[1][1]
    assert len(started) == (1 if second_process else 0)
    assert await PhoneNumber.count() == 8 and await NumberEvent.count() == 8
    again = await import_rows(carrier, rows)
    assert (again.applied, again.duplicates, again.rejected_count) == (0, 8, 3)


def test_an_event_crosses_from_the_parser_process_whole():
    """What the parser process sends back (plain values) makes the same event again, every field of it."""
    data = {"phone_number": "+8613700000009", "disconnected_at": WHEN, "reason": "fraud", "aging_ends_at": LATER,
            "line_class": "business", "jurisdiction": "hk", "subscriber_ref": "S-1", "carrier_case_id": "C-9"}
    event = lifecycle.event_from_data(lifecycle.NumberEvent.DISCONNECTED, data, "import:+8613700000009:ab", "CN", "CN")
    assert event.aging_ends_at and event.subscriber_ref and event.carrier_case_id and event.jurisdiction == "HK"
    assert imports._unwire(imports._wire(7, event)) == (7, event)


async def test_a_long_file_is_taken_a_run_at_a_time(db, monkeypatch):
    """Memory stays bounded: RUN records are read, sorted and applied before the next are read; runs
    apply in file order, and the progress knows the file's length once its last run is read."""
    monkeypatch.setattr(imports, "RUN", 3)
    monkeypatch.setattr(imports, "BATCH", 2)
    carrier = await make_carrier()
    numbers = [f"+86137{n:08d}" for n in (9, 1, 7, 3, 5, 2, 8)]
    rows = [f"{e164},{WHEN},voluntary,,residential" for e164 in numbers]
    rows.append(f"+8613700000009,{WHEN},fraud,,residential")  # line 9, in the last run: after line 2's
    reported = []
    text = "phone_number,disconnected_at,reason,aging_ends_at,line_class\n" + "\n".join(rows) + "\n"
    summary = await imports.import_disconnections(await carriers.get(carrier.id), io.StringIO(text, newline=""),
                                                  lambda done, total: reported.append((done, total)))
    assert (summary.rows, summary.applied, summary.rejected_count) == (8, 7, 1)
    assert [line for line, _ in summary.rejected] == [9]
    written = [r["e164"] for r in await PhoneNumber.select(PhoneNumber.e164).order_by(PhoneNumber.id)]
    assert written == sorted(numbers[:3]) + sorted(numbers[3:6]) + numbers[6:]
    assert reported[-1] == (8, 8) and {total for _, total in reported[:-1]} <= {None, 8}
    assert any(total is None for _, total in reported) and any(total == 8 for _, total in reported[:-1])


def test_a_batch_ends_after_the_last_row_of_its_last_number():
    """A batch is planned while the one before it is written, and a plan cannot see what that write
    is adding: a number's rows split between two batches would make the second's plan take the number
    for new, and its batch roll back and be tried again."""
    records = [(line, (e164, WHEN)) for line, e164 in enumerate(["+1", "+2", "+2", "+2", "+3", "+4", "+5"], 2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports, "BATCH", 2)
        batches = [[fields[0] for _, fields in batch] for batch in imports._chunks(records)]
    assert batches == [["+1", "+2", "+2", "+2"], ["+3", "+4"], ["+5"]]


async def test_the_next_batch_is_planned_while_one_is_written(db, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    carrier = await make_carrier()
    steps = []
    real_plan, real_apply, real_open = lifecycle.plan_bulk, lifecycle.apply_planned, lifecycle._open_first_cases

    async def plan(carrier, events):
        steps.append(("plan", events[0].number.e164))
        return await real_plan(carrier, events)

    async def apply(bulk):
        outcomes = await real_apply(bulk)
        steps.append(("written", bulk.events[0].number.e164))
        return outcomes

    attempts = []

    async def opened(plan, *, check):
        attempts.append(check)
        return await real_open(plan, check=check)

    monkeypatch.setattr(lifecycle, "plan_bulk", plan)
    monkeypatch.setattr(lifecycle, "apply_planned", apply)
    monkeypatch.setattr(lifecycle, "_open_first_cases", opened)
    summary = await import_rows(carrier, [
        f"+8613700000003,{WHEN},voluntary,,residential",
        f"+8613700000001,{WHEN},voluntary,,residential",
        f"+8613700000002,{WHEN},voluntary,,residential",   # line 4, and ...
        f"+8613700000002,{WHEN},fraud,,residential",       # ... line 5: a second disconnection
        f"+8613700000004,{WHEN},voluntary,,residential",
    ])
    assert (summary.applied, summary.rejected_count) == (4, 1)
    assert [line for line, _ in summary.rejected] == [5]
    assert steps == [("plan", "+8613700000001"), ("plan", "+8613700000003"), ("written", "+8613700000001"),
                     ("written", "+8613700000003")]
    assert attempts == [False, False]  # no plan was stale: no batch rolled back and tried again
    assert await ReleaseCase.count() == 4 and await PhoneNumber.count() == 4
