"""Clearance answers, and bulk disconnections by CLI and HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import subprocess
import sys

import pytest

from app.storage.tables import AuditEvent, NumberEvent, PhoneNumber, ReleaseCase, ReleaseTask
from tests.support import bearer, make_carrier, platform_id, send_event

PHONE = "+8613800138000"


@pytest.fixture
async def carrier(db):
    return await make_carrier()


def days_ago(days: int) -> str:
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def clearance(client, creds, phone=PHONE):
    return await client.get(f"/v1/numbers/{phone.replace('+', '%2B')}/clearance", headers=bearer(creds))


async def test_unknown_number(client, carrier):
    response = await clearance(client, carrier)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unknown" and body["case_id"] is None
    assert set(body) == {"phone_number", "status", "case_id", "earliest_clear_at", "blocked_until", "tasks",
                         "handover", "as_of"}
    assert body["tasks"]["total"] == 0


async def test_never_clear_before_minimum_aging(client, carrier):
    await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(89))
    body = (await clearance(client, carrier)).json()
    assert body["status"] == "pending" and body["case_id"]
    await send_event(client, carrier, "number.disconnected", "+8613900139000", disconnected_at=days_ago(91))
    assert (await clearance(client, carrier, "+8613900139000")).json()["status"] == "clear"


async def test_us_minimum_is_45_days(client):
    us = await make_carrier("US Wireless Test", "US")
    await send_event(client, us, "number.disconnected", "+14155552671", disconnected_at=days_ago(46),
                     jurisdiction="US")
    assert (await clearance(client, us, "+14155552671")).json()["status"] == "clear"
    await send_event(client, us, "number.disconnected", "+14155552672", disconnected_at=days_ago(44),
                     jurisdiction="US")
    assert (await clearance(client, us, "+14155552672")).json()["status"] == "pending"


async def test_open_tasks_keep_the_number_pending_after_aging(client, carrier, owner):
    for slug, disposition in [("wechat", "unbind"), ("alipay", "delete")]:
        await client.post("/v1/me/bindings", headers=owner.headers, json={
            "platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": disposition})
    await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(120))
    body = (await clearance(client, carrier)).json()
    assert body["status"] == "pending"
    assert body["tasks"]["total"] == 2 and body["tasks"]["pending"] == 2
    assert body["handover"] == {"required": False, "completed": False}
    await ReleaseTask.update({ReleaseTask.status: "unbound"}, force=True)
    body = (await clearance(client, carrier)).json()
    assert body["status"] == "clear" and body["tasks"]["unbound"] == 2
    assert await AuditEvent.count().where(AuditEvent.action == "clearance:clear") == 1


async def test_hold_blocks_until_its_end(client, carrier, cli_env):
    await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(100))
    assert (await clearance(client, carrier)).json()["status"] == "clear"
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    run = subprocess.run([sys.executable, "-m", "app.cli", "numbers", "hold", PHONE, "--until", until,
                          "--reason", "fraud report 2026-118", "--by", "reviewer@heirline.test"],
                         env=cli_env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    body = (await clearance(client, carrier)).json()
    assert body["status"] == "blocked" and body["blocked_until"].startswith(until)
    later = (dt.date.today() + dt.timedelta(days=45)).isoformat()
    run = subprocess.run([sys.executable, "-m", "app.cli", "numbers", "hold", PHONE, "--until", later,
                          "--reason", "court order 2026-7", "--by", "reviewer@heirline.test"],
                         env=cli_env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (await clearance(client, carrier)).json()["blocked_until"].startswith(later)  # the longest hold
    run = subprocess.run([sys.executable, "-m", "app.cli", "numbers", "release-hold", PHONE], env=cli_env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "lifted 2" in run.stdout
    assert (await clearance(client, carrier)).json()["status"] == "clear"


async def test_hold_in_the_past_is_refused(cli_env, db):
    run = subprocess.run([sys.executable, "-m", "app.cli", "numbers", "hold", PHONE, "--until", "2020-01-01",
                          "--reason", "x"], env=cli_env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "future" in run.stderr


async def test_batch_query(client, carrier):
    await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(100))
    response = await client.post("/v1/numbers/clearance:query", headers=bearer(carrier),
                                 json={"phone_numbers": [PHONE, "13900139000", PHONE, "+86 138 0013 8000"]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["phone_number"], r["status"]) for r in results] == [
        (PHONE, "clear"), ("+8613900139000", "unknown"), (PHONE, "clear"), (PHONE, "clear")]


@pytest.mark.parametrize("body", [{"phone_numbers": []}, {"phone_numbers": ["+8613800138000"] * 1001},
                                  {"phone_numbers": ["12345"]}, {"numbers": [PHONE]}, {"phone_numbers": "x"},
                                  # written as E.164 but not valid, and not a mobile number (a Beijing line)
                                  {"phone_numbers": [PHONE, "+8612345678"]}, {"phone_numbers": ["+861012345678"]}])
async def test_bad_batch_queries(client, carrier, body):
    await send_event(client, carrier, "number.disconnected", PHONE)  # a registered number changes nothing
    response = await client.post("/v1/numbers/clearance:query", headers=bearer(carrier), json=body)
    assert response.status_code == 400
    assert response.json()["detail"]


async def test_a_batch_with_a_number_that_cannot_be_one_is_refused_before_any_read(client, carrier, monkeypatch):
    from app.services import clearance as service

    reads = []

    async def counted(sql, *args):
        reads.append(args)
        return []

    monkeypatch.setattr(service, "read_rows", counted)
    response = await client.post("/v1/numbers/clearance:query", headers=bearer(carrier),
                                 json={"phone_numbers": [PHONE, "12345"]})
    assert response.status_code == 400 and reads == []


async def test_clearance_needs_a_carrier_token_and_respects_holders(client, carrier, owner):
    assert (await client.get("/v1/numbers/%2B8613800138000/clearance")).status_code == 401
    response = await client.get("/v1/numbers/%2B8613800138000/clearance", headers=owner.headers)
    assert response.status_code == 401  # an owner's session is not a carrier token
    other = await make_carrier("Other Carrier Test", "CN")
    await send_event(client, carrier, "number.suspended", PHONE)
    assert (await clearance(client, other)).status_code == 403
    results = (await client.post("/v1/numbers/clearance:query", headers=bearer(other),
                                 json={"phone_numbers": [PHONE]})).json()["results"]
    assert results[0]["error"]["err"] == "access_denied" and "status" not in results[0]
    assert (await client.get("/v1/numbers/not-a-number/clearance", headers=bearer(carrier))).status_code == 400


async def test_lookups_asked_at_once_are_read_together_and_each_answered_as_if_alone(
        client, carrier, monkeypatch):
    from app.errors import InvalidNumber
    from app.services import clearance as service

    other = await make_carrier("Other Carrier Test", "CN")
    await send_event(client, carrier, "number.disconnected", PHONE, disconnected_at=days_ago(100))  # clear
    await send_event(client, carrier, "number.disconnected", "+8613900139000", disconnected_at=days_ago(100))
    await send_event(client, carrier, "number.disconnected", "+8613700137000", disconnected_at=days_ago(10))
    await send_event(client, other, "number.suspended", "+8613600136000")  # held by the other carrier
    mine, theirs = carrier.id, other.id
    asked = [(mine, PHONE), (mine, "13900139000"), (mine, "+8613700137000"), (mine, "+8613600136000"),
             (mine, "+8613500135000"), (mine, "+8612345678"), (mine, "not-a-number"),  # unknown, two invalid
             (theirs, "+8613600136000"), (theirs, PHONE), (mine, PHONE)]

    def outcome(answer):
        if isinstance(answer, InvalidNumber):
            return "refused", str(answer)
        return {key: value for key, value in answer.items() if key != "as_of"}

    reads = []
    real_read = service.read_rows

    async def counted(sql, *args):
        reads.append(args)
        return await real_read(sql, *args)

    monkeypatch.setattr(service, "read_rows", counted)
    audited = await AuditEvent.count()
    together = await asyncio.gather(*(service.answer_one(who, phone, "CN") for who, phone in asked),
                                    return_exceptions=True)
    assert len(reads) == 2  # one read per carrier among them, not one per lookup
    entries = (await AuditEvent.select(AuditEvent.action, AuditEvent.actor, AuditEvent.detail).order_by(
        AuditEvent.seq))[audited:]
    assert [(e["action"], e["actor"], json.loads(e["detail"])["count"]) for e in entries] == [
        ("clearance:clear", f"carrier:{mine}", 2)]  # the two clear numbers this carrier was told of, in one entry

    alone = []
    for who, phone in asked:
        try:
            alone.append((await service.answer(who, [phone], "CN"))[0])
        except InvalidNumber as refused:
            alone.append(refused)
    assert [outcome(a) for a in together] == [outcome(a) for a in alone]
    assert [a.get("status", "error" in a and "held") if isinstance(a, dict) else "refused" for a in together] == [
        "clear", "clear", "pending", "held", "unknown", "refused", "refused", "pending", "held", "clear"]


# ---------------------------------------------------------------- bulk import

GOOD = [
    "+8613800138000,{d},voluntary,,residential",
    "13900139000,{d},non_payment,,",
    "+8613700137000,{d},fraud,,business",
]
BAD = [
    "12345,{d},voluntary,,residential",              # invalid number
    "+8613600136000,not-a-date,voluntary,,residential",
    "+8613500135000,{d},bored,,residential",
    "+8613400134000,{d}",                            # too few fields
]


def write_file(path, rows, when=None):
    when = when or days_ago(10)
    lines = ["phone_number,disconnected_at,reason,aging_ends_at,line_class"] + [r.format(d=when) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_file(cli_env, path, carrier_id):
    return subprocess.run([sys.executable, "-m", "app.cli", "import-disconnects", str(path), "--carrier",
                           str(carrier_id)], env=cli_env, capture_output=True, text=True, timeout=600)


async def test_cli_import_reports_bad_lines_and_reimport_changes_nothing(carrier, cli_env, tmp_path):
    path = write_file(tmp_path / "march.csv", GOOD[:2] + BAD + GOOD[2:] + [GOOD[0]])
    run = import_file(cli_env, path, carrier.id)
    assert run.returncode == 1  # some lines were rejected
    assert "rows: 8  applied: 3  duplicates: 1  rejected: 4" in run.stdout
    for line in (4, 5, 6, 7):
        assert f"line {line}:" in run.stderr
    assert await ReleaseCase.count() == 3
    before = (await NumberEvent.count(), await AuditEvent.count(), await PhoneNumber.count())
    again = import_file(cli_env, path, carrier.id)
    assert "applied: 0  duplicates: 4  rejected: 4" in again.stdout
    assert (await NumberEvent.count(), await AuditEvent.count(), await PhoneNumber.count()) == before


async def test_import_of_a_file_without_the_header_is_refused(carrier, cli_env, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("+8613800138000,2026-01-01,voluntary,,\n")
    run = import_file(cli_env, path, carrier.id)
    assert run.returncode == 1 and "header" in run.stderr
    assert await ReleaseCase.count() == 0


async def test_import_for_an_unknown_carrier(cli_env, tmp_path, db):
    run = import_file(cli_env, write_file(tmp_path / "x.csv", GOOD), "8d0c5f9e-0000-4000-8000-000000000000")
    assert run.returncode == 1 and "no such carrier" in run.stderr


async def test_http_batch_endpoint(client, carrier, tmp_path):
    body = write_file(tmp_path / "batch.csv", GOOD + BAD).read_bytes()
    url = f"/v1/carriers/{carrier.id}/disconnects:batch"
    response = await client.post(url, content=body, headers={**bearer(carrier), "content-type": "text/csv"})
    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["rows"], summary["applied"], summary["duplicates"], summary["rejected"]) == (7, 3, 0, 4)
    assert [e["line"] for e in summary["errors"]] == [5, 6, 7, 8]
    again = (await client.post(url, content=body, headers={**bearer(carrier), "content-type": "text/csv"})).json()
    assert (again["applied"], again["duplicates"]) == (0, 3)
    other = await make_carrier("Another Test", "CN")
    response = await client.post(url, content=body, headers={**bearer(other), "content-type": "text/csv"})
    assert response.status_code == 403
    response = await client.post(url, content=b"\xff\xfe garbage", headers={**bearer(carrier), "content-type": "text/csv"})
    assert response.status_code == 400


def test_the_collector_waits_while_imports_run_and_comes_back_after_the_last():
    from app.services import imports

    before = gc.get_threshold()
    with imports.collecting_less():
        with imports.collecting_less():  # two uploads at once in one worker
            assert gc.get_threshold()[0] == 100_000
        assert gc.get_threshold()[0] == 100_000  # the first still runs
    assert gc.get_threshold() == before


def test_the_command_line_import_runs_without_the_collector_and_gives_it_back():
    from app.services import imports

    assert gc.isenabled()
    with imports.without_collector():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with imports.without_collector():
            pass
        assert not gc.isenabled()  # as it found it
    finally:
        gc.enable()


async def test_an_upload_past_the_memory_spool_goes_to_disk_and_a_bad_byte_at_its_end_applies_nothing(
        client, carrier, tmp_path, monkeypatch):
    from app.services import imports

    monkeypatch.setattr(imports, "SPOOL_IN_MEMORY", 64)  # the file rolls over to a temporary file at once
    spools = []
    spooled_file = imports.tempfile.SpooledTemporaryFile

    def watched(*args, **kwargs):
        spools.append(spooled_file(*args, **kwargs))
        return spools[-1]

    monkeypatch.setattr(imports.tempfile, "SpooledTemporaryFile", watched)
    thresholds = []
    import_disconnections = imports.import_disconnections

    async def watching(*args, **kwargs):
        thresholds.append(gc.get_threshold()[0])
        return await import_disconnections(*args, **kwargs)

    monkeypatch.setattr(imports, "import_disconnections", watching)
    before = gc.get_threshold()
    url = f"/v1/carriers/{carrier.id}/disconnects:batch"
    headers = {**bearer(carrier), "content-type": "text/csv"}
    body = write_file(tmp_path / "upload.csv", GOOD + BAD).read_bytes()
    summary = (await client.post(url, content=body, headers=headers)).json()
    assert (summary["rows"], summary["applied"], summary["rejected"]) == (7, 3, 4)
    assert spools[0]._rolled and spools[0].closed  # read back from disk, then removed
    assert thresholds == [100_000] and gc.get_threshold() == before  # the collector waited, then came back
    bad_end = write_file(tmp_path / "bad.csv", [r.replace("138", "136") for r in GOOD]).read_bytes() + b"+86135\xff\n"
    response = await client.post(url, content=bad_end, headers=headers)
    assert response.status_code == 400 and "UTF-8" in response.json()["detail"]
    assert await ReleaseCase.count() == 3  # none of the good rows before the bad byte


async def test_hundred_thousand_rows_import_and_reimport(carrier, cli_env, tmp_path):
    path = tmp_path / "big.csv"
    when = days_ago(5)
    with path.open("w") as fh:
        fh.write("phone_number,disconnected_at,reason,aging_ends_at,line_class\n")
        for i in range(100_000):
            fh.write(f"+86139{i:08d},{when},voluntary,,residential\n")
    run = import_file(cli_env, path, carrier.id)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rows: 100000  applied: 100000  duplicates: 0  rejected: 0" in run.stdout
    assert await ReleaseCase.count() == 100_000
    audit_entries = await AuditEvent.count()
    again = import_file(cli_env, path, carrier.id)
    assert "applied: 0  duplicates: 100000  rejected: 0" in again.stdout
    assert await ReleaseCase.count() == 100_000 and await AuditEvent.count() == audit_entries
