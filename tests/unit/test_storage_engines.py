"""Engine selection, including the distributed engine, and the translation of serialization failures."""

from __future__ import annotations

import pytest
from piccolo.engine.cockroach import CockroachEngine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from app.errors import Contention
from app.storage.engine import make_engine, write_transaction


@pytest.mark.filterwarnings("ignore::Warning")  # Piccolo asks each new engine for its server version
def test_engines_by_url():
    assert isinstance(make_engine("sqlite:///var/x.db"), SQLiteEngine)
    postgres = make_engine("postgresql://u@h:5432/db")
    assert type(postgres) is PostgresEngine
    cockroach = make_engine("cockroachdb://root@h:26257/heirline?sslmode=verify-full")
    assert isinstance(cockroach, CockroachEngine)
    assert cockroach.config["dsn"] == "postgresql://root@h:26257/heirline?sslmode=verify-full"
    with pytest.raises(ValueError):
        make_engine("mysql://u@h/db")


class SerializationFailure(Exception):
    sqlstate = "40001"  # what asyncpg raises for PostgreSQL's and CockroachDB's retryable aborts


async def test_a_serialization_failure_becomes_a_retryable_contention(db):
    with pytest.raises(Contention) as caught:
        async with write_transaction():
            raise SerializationFailure("restart transaction")
    assert caught.value.status == 503 and caught.value.retry_after == 1


async def test_the_hook_batch_retries_contention(db, monkeypatch):
    from app.services import lifecycle

    calls = {"n": 0}
    real = lifecycle._Batch.run

    async def flaky(self, events):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SerializationFailure("restart transaction")
        return await real(self, events)

    monkeypatch.setattr(lifecycle._Batch, "run", flaky)
    import json

    from app.storage.tables import Carrier, NumberEvent
    from tests.support import event_body, make_carrier

    await make_carrier()
    carrier = await Carrier.select().first()
    event = lifecycle.parse_payload(json.loads(event_body("number.disconnected", "+8613800138000")), "msg_1", "CN", "CN")
    outcomes = await lifecycle.apply(carrier, [event])
    assert calls["n"] == 2 and [o.result for o in outcomes] == ["applied"]
    assert await NumberEvent.count() == 1  # applied once, after the retry


async def test_writes_share_one_kept_connection_and_a_failed_one_leaves_nothing(db):
    """SQLite: one writer connection outlives each transaction (and a rollback); PostgreSQL: the pool."""
    from app.storage import engine
    from app.storage.tables import Carrier
    from tests.support import make_carrier

    await make_carrier()
    connections = []
    for _ in range(2):
        async with write_transaction():
            connections.append(engine.DB.current_transaction.get().connection)
            await engine.run_sql("UPDATE carrier SET name = {}", "First Mobile")
    with pytest.raises(RuntimeError):
        async with write_transaction():
            connections.append(engine.DB.current_transaction.get().connection)
            await engine.run_sql("UPDATE carrier SET name = {}", "Half Written")
            raise RuntimeError("the request failed half-way")
    async with write_transaction():
        connections.append(engine.DB.current_transaction.get().connection)
        assert [r["name"] for r in await engine.run_sql("SELECT name FROM carrier")] == ["First Mobile"]
    assert [r["name"] for r in await Carrier.select(Carrier.name)] == ["First Mobile"]
    if engine.is_sqlite():
        assert len({id(c.inner) for c in connections}) == 1 and not connections[0].inner.in_transaction


async def test_a_writer_left_inside_a_transaction_is_replaced(db, monkeypatch):
    """If the rollback itself fails, the next write starts on a fresh connection, not inside the old one."""
    from app.storage import engine
    from tests.support import make_carrier

    if not engine.is_sqlite():
        pytest.skip("SQLite's kept writer connection")
    async with write_transaction():
        first = engine.DB.current_transaction.get().connection.inner

    async def broken_rollback(self):
        raise OSError("disk went away")

    monkeypatch.setattr(engine._WriterTransaction, "rollback", broken_rollback)
    with pytest.raises(OSError):
        async with write_transaction():
            await make_carrier()
            raise RuntimeError("boom")
    monkeypatch.undo()
    async with write_transaction():
        assert engine.DB.current_transaction.get().connection.inner is not first
        assert (await engine.run_sql("SELECT count(*) AS n FROM carrier"))[0]["n"] == 0  # nothing half-written


async def test_statements_run_on_the_writers_thread_or_on_the_event_loop_when_asked(db):
    """SQLite: a write transaction's statements run on the writer's own thread; inside
    ``statements_on_the_loop`` on the event loop's thread (no trip there and back for each), all but
    BEGIN, COMMIT and ROLLBACK, which may wait and so still take the writer's thread. Piccolo's
    ``PRAGMA foreign_keys`` before each of its queries is not sent again."""
    from app.storage import engine
    from tests.support import make_carrier, statements_and_threads

    if not engine.is_sqlite():
        pytest.skip("SQLite's writer thread")
    await make_carrier()
    with statements_and_threads(await engine._writer_connection()) as ran:
        async with write_transaction():
            await engine.in_transaction("SELECT count(*) AS n FROM carrier")
        with engine.statements_on_the_loop():
            async with write_transaction():
                await engine.in_transaction("SELECT count(*) AS n FROM carrier")
                await engine.run_sql("UPDATE carrier SET name = name")  # through Piccolo
            with pytest.raises(RuntimeError):
                async with write_transaction():
                    await engine.in_transaction("UPDATE carrier SET name = {}", "Half Written")
                    raise RuntimeError("the request failed half-way")
    on_writer_thread = [("BEGIN", True), ("SELECT", True), ("COMMIT", True)]
    on_the_loop = [("BEGIN", True), ("SELECT", False), ("UPDATE", False), ("COMMIT", True),
                   ("BEGIN", True), ("UPDATE", False), ("ROLLBACK", True)]
    assert [(sql.split()[0], on_thread) for sql, on_thread in ran] == on_writer_thread + on_the_loop


async def test_a_write_cancelled_while_its_statement_runs_leaves_nothing_and_the_writer_usable(db):
    """SQLite: a request cancelled while its statement runs on the writer's thread (a client that went
    away) is rolled back, and the next write on the same connection goes on."""
    import asyncio

    from app.storage import engine
    from app.storage.tables import Carrier
    from tests.support import make_carrier

    if not engine.is_sqlite():
        pytest.skip("SQLite's writer thread")
    await make_carrier()
    [before] = [r["name"] for r in await engine.run_sql("SELECT name FROM carrier")]
    counting = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)"
                " SELECT count(*) AS n FROM c")  # a few hundred milliseconds on the writer's thread

    async def request():
        async with write_transaction():
            await engine.run_sql("UPDATE carrier SET name = {}", "Half Written")
            await engine.in_transaction(counting)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with write_transaction():
        assert [r["name"] for r in await engine.run_sql("SELECT name FROM carrier")] == [before]
        await engine.run_sql("UPDATE carrier SET name = {}", "Written Whole")
    assert [r["name"] for r in await Carrier.select(Carrier.name)] == ["Written Whole"]


async def test_a_pooled_connection_comes_back_without_its_unfinished_transaction(db, monkeypatch):
    """PostgreSQL: the pool skips asyncpg's reset query on release (a round trip per request), but a
    transaction left open on a connection is still rolled back and its row locks freed."""
    import asyncio
    import dataclasses

    from app.storage import engine
    from tests.support import make_carrier

    if engine.is_sqlite():
        pytest.skip("PostgreSQL's connection pool")
    await make_carrier()
    settings = dataclasses.replace(engine.get_settings(), db_pool_size=2)  # the tests run without a pool
    monkeypatch.setattr(engine, "get_settings", lambda: settings)
    await engine.prepare_database()
    try:
        async with engine.DB.pool.acquire() as connection:
            await connection.execute("BEGIN")
            await connection.execute("UPDATE carrier SET name = 'Half Written'")
        for _ in range(settings.db_pool_size + 1):  # every connection in turn, none blocked
            async with engine.DB.pool.acquire() as connection:
                assert not connection.is_in_transaction()
                await asyncio.wait_for(connection.execute("UPDATE carrier SET name = name"), timeout=10)
        assert [r["name"] for r in await engine.read_rows("SELECT name FROM carrier")] == ["China Mobile Test"]
    finally:
        await engine.close_database()


async def test_postgres_sessions_price_index_pages_as_cached(db):
    """PostgreSQL: Heirline's connections plan with random_page_cost 1.1, so a clearance batch walks the
    indexes instead of hashing whole tables (see PLANNER_SETTINGS)."""
    from app.storage import engine

    if engine.is_sqlite():
        pytest.skip("a PostgreSQL planner setting")
    [row] = await engine.read_rows("SELECT current_setting('random_page_cost') AS cost")
    assert row["cost"] == engine.PLANNER_SETTINGS["random_page_cost"]


@pytest.mark.parametrize("numbers", [["+8613800138000"], ["+8613800138000", "+8613800138001"]])
async def test_a_lookup_by_one_key_is_planned_once_per_connection(db, numbers):
    """PostgreSQL guesses ten values for ``= ANY($1)``, so a prepared single-number lookup through it never
    earns a generic plan and is planned on every call (three times its execution); one key is compared
    plainly. Both forms find the same rows (a batch's plan is a small share of its thousand lookups)."""
    from app.storage import engine
    from app.storage.tables import PhoneNumber

    await PhoneNumber.insert(*[PhoneNumber(e164=n, region="CN") for n in numbers])
    condition, args = engine.any_of("e164", numbers)
    sql = f"SELECT e164 FROM phone_number WHERE {condition}"
    async with write_transaction():  # one connection throughout
        for _ in range(8):
            assert sorted(r["e164"] for r in await engine.read_rows(sql, *args)) == numbers
        if engine.is_sqlite():
            return
        [plans] = await engine.read_rows("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                                         " WHERE statement = {}", engine._native_sql(sql))
    if len(numbers) == 1:
        assert plans["generic_plans"] >= 2 and plans["custom_plans"] <= 5


async def test_bulk_inserts_store_what_row_by_row_inserts_store(db, monkeypatch):
    """SQLite takes 500 rows or more as one JSON array; times, flags, empty values, ids and keys that
    collide must come out exactly as from row-by-row inserts (and PostgreSQL's COPY)."""
    import datetime as dt
    import uuid

    from app.storage import engine
    from app.storage.tables import Account

    moment = dt.datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=dt.timezone.utc)
    later = moment.astimezone(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(seconds=1)

    def rows(tag: str) -> list[dict]:
        return [dict(id=uuid.uuid4() if i % 2 else str(uuid.uuid4()), email=f"{tag}{i}@例子.example",
                     password_hash='quote " and \\ backslash', is_reviewer=i % 3 == 0, status="active",
                     locale="en" if i == 300 else "zh",  # the same at both ends, not throughout
                     created_at=moment if i % 2 else later) for i in range(600)]

    def stored(found: list[dict]) -> list[tuple]:
        return sorted((r["email"].split("@")[0][1:], r["password_hash"], r["is_reviewer"], r["locale"],
                       r["created_at"]) for r in found)

    async with write_transaction():
        await engine.insert_rows(Account, rows("b"))
    monkeypatch.setattr(engine, "JSON_FROM", 10**9)
    async with write_transaction():
        await engine.insert_rows(Account, rows("r"))
    by_bulk = await Account.select().where(Account.email.like("b%"))
    by_row = await Account.select().where(Account.email.like("r%"))
    assert len(by_bulk) == 600 and stored(by_bulk) == stored(by_row)
    assert {r["created_at"] for r in by_bulk} == {moment, later} and all(isinstance(r["id"], uuid.UUID) for r in by_bulk)
    assert await Account.count().where(Account.created_at > moment) == 600  # times compare as before
    with pytest.raises(Exception):  # noqa: B017 - a key that collides fails the whole statement
        async with write_transaction():
            await engine.insert_rows(Account, rows("b"))
    assert await Account.count() == 1200
    monkeypatch.setattr(engine, "JSON_FROM", 500)
    async with write_transaction():  # unless told to leave the rows already there as they are
        await engine.insert_rows(Account, rows("b") + rows("n"), on_conflict_ignore=True)
    assert await Account.count() == 1800


async def test_inserts_of_one_table_with_different_columns_each_get_their_own_defaults(db):
    """An insert's plan is worked out once per table and set of columns given: rows that leave out other
    columns, or come later, still get their own defaults, a fresh id each and the time of their insert."""
    import asyncio
    import datetime as dt
    import uuid

    from app.storage import engine
    from app.storage.tables import Account

    async def insert(rows: list[dict]) -> None:
        async with write_transaction():
            await engine.insert_rows(Account, rows)

    given = dict(password_hash="x", is_reviewer=True, status="disabled", locale="en",
                 created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    await insert([dict(id=uuid.uuid4(), email=f"full{i}@example.com", **given) for i in range(3)])
    await insert([dict(email=f"bare{i}@example.com", password_hash="x") for i in range(3)])
    first = await Account.select().where(Account.email.like("bare%"))
    await asyncio.sleep(0.01)
    await insert([dict(email=f"later{i}@example.com", password_hash="x") for i in range(3)])
    later = await Account.select().where(Account.email.like("later%"))
    await insert([dict(id=uuid.uuid4(), email=f"again{i}@example.com", **given) for i in range(3)])

    for row in first + later:
        assert (row["is_reviewer"], row["status"], row["locale"]) == (False, "active", "zh")
    assert len({row["id"] for row in first + later}) == 6
    assert max(row["created_at"] for row in first) < min(row["created_at"] for row in later)
    for row in await Account.select().where(Account.email.like("full%") | Account.email.like("again%")):
        assert (row["is_reviewer"], row["status"], row["locale"], row["created_at"].year) == (True, "disabled", "en", 2026)


async def test_a_table_grown_since_its_last_analysis_is_analyzed_once(db):
    """PostgreSQL: the worker refreshes the notice table's statistics when it has changed by more than
    a tenth (and 1,000 rows) since the last ANALYZE, then leaves it alone; SQLite: nothing to do."""
    import uuid

    from app.storage import engine
    from app.storage.tables import Account

    table = Account._meta.tablename
    if engine.is_sqlite():
        assert await engine.refresh_statistics_if_stale(table) is False
        return
    await engine.refresh_statistics(table)
    assert await engine.refresh_statistics_if_stale(table) is False
    async with write_transaction():
        await engine.insert_rows(Account, [dict(id=uuid.uuid4(), email=f"s{i}@example.com", password_hash="x",
                                                status="active", locale="en") for i in range(1200)])
        await engine.run_sql("SELECT pg_stat_force_next_flush()")  # counted before COMMIT returns
    assert await engine.refresh_statistics_if_stale(table) is True
    [row] = await engine.run_sql("SELECT n_mod_since_analyze AS changed FROM pg_stat_user_tables"
                                 " WHERE relname = {}", table)
    assert row["changed"] == 0
    assert await engine.refresh_statistics_if_stale(table) is False


async def test_a_writer_turn_spans_transactions_of_its_task_and_holds_off_others(db):
    """SQLite: the task holding the writer's turn opens transactions without waiting for the locks it
    holds; another task's transaction waits for the turn to end. PostgreSQL: no turn, nothing waits."""
    import asyncio

    from app.storage.engine import is_sqlite, write_transaction, writer_turn
    from app.storage.tables import Carrier

    order = []

    async def other():
        async with write_transaction():
            order.append("other")

    async def turn():
        async with writer_turn():
            for name in ("first", "second"):
                async with write_transaction():
                    await Carrier.insert(Carrier(name=name, jurisdiction="CN"))
                    order.append(name)
            waiting = asyncio.ensure_future(other())
            await asyncio.sleep(0.05)
            order.append("turn ends")
        await waiting

    await asyncio.wait_for(turn(), 10)  # a transaction waiting for its own task's turn would never end
    expected = ["first", "second", "turn ends", "other"] if is_sqlite() else ["first", "second", "other", "turn ends"]
    assert order == expected
    assert await Carrier.count() == 2
