"""The one module that knows which database engine runs underneath.

SQLite (embedded default): WAL set once at start-up, every write transaction ``BEGIN IMMEDIATE``
behind one in-process writer lock (and a file lock shared with the other processes), so read-then-write
transactions never dead-lock, on one writer connection kept for the life of the process.
PostgreSQL (production): an asyncpg pool opened at start-up (not in tests, where the test client
runs the app on another event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import fcntl
import functools
import operator
import os
import sqlite3
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import AsyncIterator, Callable, Iterator, NamedTuple, Sequence
from urllib.parse import unquote, urlparse

import msgspec
import anyio.to_thread
from piccolo.columns import Bytea, Decimal, Numeric, Timestamp, Timestamptz
from piccolo.columns.defaults.base import Default
from piccolo.columns.defaults.uuid import UUID4
from piccolo.engine.base import Engine
from piccolo.engine.cockroach import CockroachEngine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, convert_datetime_in
from piccolo.querystring import QueryString

from app.errors import Conflict, Contention
from app.settings import get_settings
from app.storage.ids import new_id


def make_engine(url: str) -> Engine:
    """``sqlite:///relative/path.db``, ``sqlite:////abs/path.db``, ``postgresql://...`` or, for the
    distributed engine, ``cockroachdb://...`` (PostgreSQL wire protocol, see docs/scaling.md)."""
    if url.startswith("sqlite:"):
        path = unquote(url.split("sqlite:///", 1)[1]) if "sqlite:///" in url else ""
        if not path:
            raise ValueError("a SQLite URL looks like sqlite:///var/heirline.db")
        return SQLiteEngine(path=path, timeout=30)
    parsed = urlparse(url)
    if parsed.scheme == "cockroachdb":
        return CockroachEngine(config={"dsn": "postgresql" + url[len("cockroachdb"):]})
    if parsed.scheme not in {"postgresql", "postgres"}:
        raise ValueError(f"unsupported database URL scheme {parsed.scheme!r}")
    return PostgresEngine(config={"dsn": url, "server_settings": PLANNER_SETTINGS})


# The registry's lookups touch a few rows each through indexes whose pages are nearly always in memory.
# With PostgreSQL's default random_page_cost (4, priced for spinning disks) the planner answered a
# clearance batch of 1,000 numbers in a 100,000-number registry by hashing the whole tenure and
# release_case tables (150 ms); priced as cached or SSD pages (the usual 1.1) it walks the indexes
# (27 ms). Set per session, on Heirline's own connections only; a DBA's per-database setting wins
# only if removed here.
PLANNER_SETTINGS = {"random_page_cost": "1.1"}


DB: Engine = make_engine(get_settings().database_url)

_stamps: dict[dt.datetime, str] = {}


def _sqlite_stamp(value: dt.datetime) -> str:
    """Piccolo's datetime adapter, remembered: a batch writes the same few moments many times over
    (its ``now``, a file's disconnection dates), and the conversion costs microseconds each."""
    text = _stamps.get(value)
    if text is None:
        if len(_stamps) >= 4096:
            _stamps.clear()
        text = _stamps[value] = convert_datetime_in(value)
    return text


sqlite3.register_adapter(dt.datetime, _sqlite_stamp)


async def run_sql(sql: str, *args: object) -> list[dict]:
    """A parameterised statement (``{}`` placeholders) on the current transaction, if any; rows as dicts
    on both engines (asyncpg answers with read-only records)."""
    rows = await DB.run_querystring(QueryString(sql, *args))
    return [dict(row) for row in rows] if rows and not isinstance(rows[0], dict) else rows


def is_sqlite(engine: Engine | None = None) -> bool:
    return isinstance(engine or DB, SQLiteEngine)


def is_cockroach(engine: Engine | None = None) -> bool:
    return isinstance(engine or DB, CockroachEngine)


# asyncio.Lock binds to the loop that first waits on it; the test client runs the app on its own
# loop, so keep one writer lock per loop (in production there is only one).
_writer_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = (
    weakref.WeakKeyDictionary()
)


def _writer_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _writer_locks.get(loop)
    if lock is None:
        lock = _writer_locks[loop] = asyncio.Lock()
    return lock


class _ProcessLock:
    """An exclusive lock on a file beside the SQLite database, shared by every process that writes it.

    SQLite's own busy handler makes a waiting writer sleep with growing back-off (up to 100 ms), so two
    `serve` workers contending for the database mostly sleep; a blocking file lock taken in a thread
    wakes the next writer as soon as the lock is free.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.path = ""

    def _file(self) -> int:
        path = str(DB.path) + ".writer-lock"
        if self.fd is None or self.path != path:
            if self.fd is not None:
                os.close(self.fd)
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self.path = path
        return self.fd

    async def acquire(self) -> None:
        fd = self._file()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


_process_lock = _ProcessLock()


class _Writer:
    """SQLite's one writer connection in this process, kept from one transaction to the next (Piccolo
    opens, and closes, a connection with its own thread and an empty page cache for every transaction),
    with the part of aiosqlite's surface that Piccolo's transactions and :mod:`app.storage.engine` use.

    A statement runs on the writer's own thread, leaving the event loop free while SQLite works; inside
    :func:`statements_on_the_loop`, on the event loop's thread at once. ``BEGIN`` (which may wait for
    another program's lock), ``COMMIT`` (which waits for the disk) and ``ROLLBACK`` (which follows a
    statement still running when its caller was cancelled) always take the writer's thread, one at a
    time and in order.
    """

    _ON_ITS_THREAD = ("BEGIN", "COMMIT", "ROLLBACK")

    def __init__(self, path: str) -> None:
        self.path = path
        self.inner = sqlite3.connect(**DB.connection_kwargs, check_same_thread=False)
        self.inner.row_factory = _RowsAsDicts()
        self.inner.execute("PRAGMA foreign_keys = 1")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="heirline-sqlite-writer")

    # Piccolo switches foreign keys on before each query (and sets a row factory, which goes unused:
    # the rows are dicts already); they were switched on when the connection opened
    _SET_ALREADY = "PRAGMA foreign_keys = 1"

    def execute(self, sql: str, parameters: Sequence = ()) -> "_Statement":
        return _Statement(self, sql, parameters)

    async def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        await self._run(self.inner.executemany, sql, rows, inline=_on_the_loop.get())

    async def _statement(self, sql: str, parameters: Sequence) -> "_Cursor":
        if sql == self._SET_ALREADY:
            return _Cursor([])
        inline = _on_the_loop.get() and not sql.startswith(self._ON_ITS_THREAD)
        return await self._run(self._fetch, sql, parameters, inline=inline)

    def _fetch(self, sql: str, parameters: Sequence) -> "_Cursor":
        return _Cursor(self.inner.execute(sql, parameters).fetchall())

    async def _run(self, function: Callable, *arguments: object, inline: bool):
        if inline:
            return function(*arguments)
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *arguments)

    async def close(self) -> None:  # Piccolo's transaction ends by closing: keep it for the next one
        pass

    def shut(self) -> None:
        """Close the connection once whatever runs on its thread is done."""
        self._thread.submit(self.inner.close)
        self._thread.shutdown(wait=False)


class _Statement:
    """What :meth:`_Writer.execute` answers: awaited, or entered as ``async with``, its cursor."""

    __slots__ = ("writer", "sql", "parameters")

    def __init__(self, writer: _Writer, sql: str, parameters: Sequence) -> None:
        self.writer, self.sql, self.parameters = writer, sql, parameters

    def __await__(self):
        return self.writer._statement(self.sql, self.parameters).__await__()

    async def __aenter__(self) -> "_Cursor":
        return await self.writer._statement(self.sql, self.parameters)

    async def __aexit__(self, *exc_info: object) -> None:
        pass


class _Cursor:
    """A statement's rows, all fetched where it ran (one trip to the writer's thread, not two)."""

    __slots__ = ("rows",)

    def __init__(self, rows: list) -> None:
        self.rows = rows

    async def fetchall(self) -> list:
        return self.rows


# one per event loop, like the writer lock (the test client runs the app on its own loop)
_writers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer]" = weakref.WeakKeyDictionary()

_on_the_loop: contextvars.ContextVar[bool] = contextvars.ContextVar("heirline_statements_on_the_loop", default=False)


@contextlib.contextmanager
def statements_on_the_loop() -> Iterator[None]:
    """SQLite: the write transactions opened inside run their statements on the event loop's own thread.

    For short transactions of many short statements written while the process holds the one writer
    (the hook's group commit: a group's twenty-odd statements, each well under a millisecond; the
    delivery worker's claims and records): each statement sent to the writer's thread and back waits
    for a turn of an event loop that is busy serving requests or deliveries, and the other processes
    wait for the writer meanwhile. Not for bulk work, whose
    statements would stop the event loop for as long as they run. PostgreSQL: no effect.
    """
    token = _on_the_loop.set(True)
    try:
        yield
    finally:
        _on_the_loop.reset(token)


async def _writer_connection() -> _Writer:
    loop = asyncio.get_running_loop()
    path = str(DB.path)
    kept = _writers.get(loop)
    if kept is not None and kept.path == path:
        return kept
    if kept is not None:  # the database moved (tests give each test its own file)
        await _drop_writer()
    _writers[loop] = kept = _Writer(path)
    return kept


async def _drop_writer() -> None:
    kept = _writers.pop(asyncio.get_running_loop(), None)
    if kept is not None:
        with contextlib.suppress(Exception):
            kept.shut()


class _WriterTransaction(SQLiteTransaction):
    """``BEGIN IMMEDIATE`` on the kept writer connection (callers hold the writer locks)."""

    __slots__ = ()

    async def get_connection(self):
        return await _writer_connection()


_turn: contextvars.ContextVar[asyncio.Task | None] = contextvars.ContextVar("heirline_writer_turn", default=None)


@contextlib.asynccontextmanager
async def writer_turn() -> AsyncIterator[None]:
    """SQLite: hold the writer locks (this process's, and the file lock its processes share) for a
    stretch of write transactions by this task, which then do not wait for them again; PostgreSQL, with
    no writer lock: nothing.

    The hook's group commit takes its group once it holds them (see
    :class:`app.storage.group_commit.GroupCommit`): events that arrive while another process writes join
    the group about to be written instead of waiting for the one after it. Only the task that took the
    turn skips the locks: a task it starts waits for them like any other.
    """
    if not isinstance(DB, SQLiteEngine) or _turn.get() is asyncio.current_task():
        yield
        return
    async with _writer_lock():
        await _process_lock.acquire()
        holder = _turn.set(asyncio.current_task())
        try:
            yield
        finally:
            _turn.reset(holder)
            _process_lock.release()


@contextlib.asynccontextmanager
async def write_transaction() -> AsyncIterator[None]:
    """A transaction that may write; joins the caller's transaction if one is open.

    Unique-constraint violations surface as :class:`app.errors.Conflict`; serialization failures
    (SQLSTATE 40001: PostgreSQL under contention, and CockroachDB, which aborts instead of waiting) as
    :class:`app.errors.Contention`, which batch paths retry and clients see as 503 with Retry-After.
    """
    engine = DB
    if engine.current_transaction.get() is not None:
        yield
        return
    try:
        if isinstance(engine, SQLiteEngine):
            async with writer_turn():
                transaction = _WriterTransaction(engine, transaction_type=TransactionType.immediate)
                try:
                    async with transaction:
                        yield
                except BaseException:
                    if not (transaction._committed or transaction._rolled_back):
                        # COMMIT or ROLLBACK itself failed: the connection may still be inside the
                        # transaction, and Piccolo did not get to let go of it; the next write starts afresh
                        if engine.current_transaction.get() is transaction:
                            engine.current_transaction.reset(transaction.context)
                        await _drop_writer()
                    raise
        else:
            async with engine.transaction():
                yield
    except Exception as exc:  # translate only integrity and serialization errors; everything else propagates
        if _is_unique_violation(exc):
            raise Conflict("that record already exists") from exc
        if _is_serialization_failure(exc):
            raise Contention("the same records were being changed at the same moment; retry", retry_after=1) from exc
        raise


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, asyncpg.exceptions.UniqueViolationError)


def _is_serialization_failure(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == "40001"


async def serialize_appends(name: str) -> None:
    """Inside a write transaction, make appends to one chain (e.g. the audit log) take turns.

    SQLite already serialises writers; PostgreSQL takes a transaction-scoped advisory lock; CockroachDB
    has no advisory locks but runs every transaction SERIALIZABLE, so of two appends racing for the same
    chain head one aborts (40001) and is retried.
    """
    if not is_sqlite() and not is_cockroach():
        await run_sql("SELECT pg_advisory_xact_lock(hashtext({}))", name)


async def prepare_database(*, pool: bool = True) -> None:
    """Called once at start-up."""
    if isinstance(DB, SQLiteEngine):
        await run_sql("PRAGMA journal_mode=WAL")
    elif pool and (size := get_settings().db_pool_size) > 0:
        # asyncpg opens min_size connections up front (10 unless told): never more than the pool may hold
        await DB.start_connection_pool(min_size=min(size, 10), max_size=size, reset=_keep_session)


async def _keep_session(connection) -> None:
    """What the pool does to a connection it takes back, beyond rolling back an unfinished transaction
    (which asyncpg always does): nothing. asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release, a round trip per request; Heirline leaves no session state
    behind (its advisory locks and cursors end with their transaction; it never LISTENs or SETs)."""


async def close_database() -> None:
    if isinstance(DB, SQLiteEngine):
        await _drop_writer()
    if isinstance(DB, PostgresEngine) and DB.pool is not None:
        await DB.close_connection_pool()


async def refresh_statistics(*tables: str) -> None:
    """PostgreSQL plans each lookup from its tables' statistics, which autovacuum refreshes only a while
    after a table has grown; until then a lookup of 5,000 keys in a table that grew a hundredfold
    since is planned as a scan of the whole table. A bulk load that goes on reading what it wrote calls
    this as it goes. SQLite needs nothing: its planner takes an index for lookups by key without any."""
    if not is_sqlite():
        for table in tables:
            await run_sql(f'ANALYZE "{table}"')


async def refresh_statistics_if_stale(table: str, *, share: float = 0.1, floor: int = 1000) -> bool:
    """PostgreSQL: ANALYZE ``table`` if more rows changed since its last analysis than ``share`` of it
    (and ``floor``); True if it did. Autovacuum does the same, but up to a minute later, and a queue
    that fills by the ten thousand is planned from its empty self meanwhile (the worker's claim then
    sorted every pending notice). One query to the statistics views when nothing is stale."""
    if is_sqlite() or is_cockroach():
        return False
    rows = await run_sql("SELECT n_mod_since_analyze AS changed, n_live_tup AS live FROM pg_stat_user_tables"
                         " WHERE relname = {}", table)
    if not rows or rows[0]["changed"] <= max(floor, share * rows[0]["live"]):
        return False
    await refresh_statistics(table)
    return True


async def locked_numbers(e164s: list[str], read: list[dict]) -> list[dict]:
    """Inside a write transaction, the numbers' rows (at least ``id, e164, carrier``) taken for the rest
    of it, given those it has ``read`` and written itself.

    SQLite already serialises writers: what this transaction read and wrote is what there is.
    PostgreSQL locks the rows in a fixed order, so two events for one number apply one after the
    other, and reads them under the lock (another transaction may have added or changed one since).
    """
    if is_sqlite() or not e164s:
        return read
    return await where_in("SELECT id, e164, carrier FROM phone_number WHERE e164 IN ({}) ORDER BY e164 FOR UPDATE",
                          e164s)


COPY_FROM = 50  # rows; below this a prepared executemany is as quick


async def insert_rows(table, rows: list[dict], chunk: int = 5000, on_conflict_ignore: bool = False) -> None:
    """Bulk insert plain dicts with the driver's executemany (PostgreSQL: COPY from 50 rows), inside the
    current write transaction.

    The fast path for hot tables (hook ingest, bulk import, notices): no Piccolo row objects, one
    prepared statement. Columns a row leaves out take the Piccolo column default.
    """
    await prepare_insert(table, rows, chunk, on_conflict_ignore).write()


@dataclass
class PreparedInsert:
    """An :func:`insert_rows` made ready outside any transaction: the rows turned into the statement's
    arguments (Python's work, which on SQLite would otherwise be done while the one writer is held),
    written by :meth:`write` inside one."""

    sql: str = ""
    values: list[tuple] = field(default_factory=list)  # executemany's rows, ``chunk`` at a time
    chunk: int = 5000
    copy: tuple[str, Sequence[str]] | None = None  # PostgreSQL: COPY into (table, columns)
    arguments: tuple | None = None  # SQLite: one statement over a JSON array

    async def write(self) -> None:
        if not self.sql and self.copy is None:
            return  # no rows
        transaction = DB.current_transaction.get()
        if transaction is None:
            raise RuntimeError("insert_rows runs inside write_transaction()")
        if self.copy is not None:
            table, names = self.copy
            await transaction.connection.copy_records_to_table(table, records=self.values, columns=names)
        elif self.arguments is not None:
            await transaction.connection.execute(self.sql, self.arguments)
        else:
            for start in range(0, len(self.values), self.chunk):
                await transaction.connection.executemany(self.sql, self.values[start:start + self.chunk])


class _InsertPlan(NamedTuple):
    """What inserting rows that give some of a table's columns needs, worked out from its Piccolo columns
    once (reading them cost about 150 us per insert, nine times in each hook group, in SQLite's writer's
    turn)."""

    columns: tuple
    names: tuple[str, ...]
    keys: tuple[str, ...]  # the rows' keys, in the columns' order
    makers: tuple[tuple[str, Callable[[], object]], ...]  # what fills each column a row leaves out
    fill: tuple[tuple[str, Callable[[], object]], ...]  # the makers of the columns the first row leaves out
    into: str  # INSERT INTO "table" ("a", "b")
    placeholders: str  # one per column: ? on SQLite, $1, $2, ... on PostgreSQL


@functools.lru_cache(maxsize=512)
def _insert_plan(table, given: frozenset[str], sqlite: bool) -> _InsertPlan:
    # a column the rows leave out whose default is SQL (a serial key) is left to the database
    columns = tuple(c for c in table._meta.columns
                    if c._meta.name in given or not isinstance(c.get_default_value(), QueryString))
    names = tuple(c._meta.db_column_name for c in columns)
    quoted = ", ".join(f'"{n}"' for n in names)
    if sqlite:
        placeholders = ", ".join("?" for _ in names)
    else:
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    keys = tuple(c._meta.name for c in columns)
    makers = tuple((key, _default_maker(c)) for key, c in zip(keys, columns, strict=True))
    fill = tuple((key, make) for key, make in makers if key not in given)
    return _InsertPlan(columns, names, keys, makers, fill, f'INSERT INTO "{table._meta.tablename}" ({quoted})',
                       placeholders)


def prepare_insert(table, rows: list[dict], chunk: int = 5000, on_conflict_ignore: bool = False) -> PreparedInsert:
    """What :func:`insert_rows` writes, ready to be written (see :class:`PreparedInsert`)."""
    if not rows:
        return PreparedInsert()
    columns, names, keys, makers, fill, into, placeholders = _insert_plan(table, frozenset(rows[0]), is_sqlite())
    conflict = " ON CONFLICT DO NOTHING" if on_conflict_ignore else ""  # another writer's row stays as it is
    if fill:  # typically only the id
        rows = [{**row, **{key: make() for key, make in fill if key not in row}} for row in rows]
    getter = operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
    try:
        values = list(map(getter, rows))
    except KeyError:  # rows that leave out different columns
        values = [tuple(row[key] if key in row else make() for key, make in makers) for row in rows]
    if not is_sqlite() and not on_conflict_ignore and len(values) >= COPY_FROM:
        # PostgreSQL's COPY: one binary stream instead of a statement per row
        return PreparedInsert(values=values, copy=(table._meta.tablename, names))
    if is_sqlite() and len(values) >= JSON_FROM and (rows_json := _json_rows(columns, values)) is not None:
        text, same = rows_json
        cells, args, at = [], [], 0
        for i in range(len(names)):
            if i in same:  # one value for every row: bound once
                cells.append("?")
                args.append(same[i])
            else:
                cells.append(f"json_extract(value, '$[{at}]')")
                at += 1
        # (WHERE true: SQLite's grammar needs it before an ON CONFLICT clause after a SELECT)
        return PreparedInsert(sql=f"{into} SELECT {', '.join(cells)} FROM json_each(?) WHERE true{conflict}",
                              arguments=(*args, text))
    return PreparedInsert(sql=f"{into} VALUES ({placeholders}){conflict}", values=values, chunk=chunk)  # executemany


JSON_FROM = 500  # rows; SQLite takes them as one JSON array in one statement


def _json_rows(columns: Sequence, values: list[tuple]) -> tuple[str, dict[int, object]] | None:
    """The rows as one JSON array for SQLite's ``json_each`` (without the columns that hold one value in
    every row, returned by position), or None when a column holds what JSON cannot carry as SQLite would
    store it (bytes, decimals).

    ``executemany`` takes the GIL back from the thread that builds the next batch for every row it
    binds, so on a busy process the writer thread waits for the interpreter more than for the disk;
    one statement runs without it from start to end. Times are written as Piccolo writes them.
    """
    if any(isinstance(c, (Bytea, Numeric, Decimal)) for c in columns):
        return None
    # column by column, each a tuple (the transposition, the comparisons and the rows' rebuilding run in C)
    by_column = list(zip(*values))
    same = {i: column[0] for i, column in enumerate(by_column) if column.count(column[0]) == len(column)}
    varying = []
    for i, column in enumerate(by_column):
        if i in same:
            continue
        if isinstance(columns[i], (Timestamptz, Timestamp)):
            column = [None if moment is None else _sqlite_stamp(moment) for moment in column]
        varying.append(column)
    if not varying:  # every row the same: rare, and nothing for json_each to carry
        return None
    return msgspec.json.encode(list(zip(*varying))).decode(), same


def _default_maker(column) -> Callable[[], object]:
    """What fills a column a row leaves out: a time-ordered id for a UUID primary key (see
    :mod:`app.storage.ids`), else the Piccolo default, computed per row."""
    default = getattr(column, "default", None)
    if isinstance(default, Enum):
        default = default.value
    if column._meta.primary_key and isinstance(default, UUID4):
        return new_id
    if isinstance(default, Default):
        return default.python
    if callable(default):  # a function given as the default (Piccolo calls it per row too)
        return default
    return lambda: default


# ---------------------------------------------------------------- fast reads

_readers: dict[str, sqlite3.Connection] = {}


class _RowsAsDicts:
    """A SQLite row factory: each row a dict keyed by column name, the names taken once per statement
    (a cursor keeps one description for all its rows), not once per row as Piccolo's ``dict_factory``
    does: about half a microsecond a row."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple = (None, ())  # (description, names), replaced whole: safe from any thread

    def __call__(self, cursor: sqlite3.Cursor, row: tuple) -> dict:
        last = self._last
        if cursor.description is not last[0]:
            last = self._last = (cursor.description, tuple(column[0] for column in cursor.description))
        return dict(zip(last[1], row))


def _sqlite_reader() -> sqlite3.Connection:
    """One long-lived read connection per process and database file (SQLite lookups take microseconds;
    a new connection per query, as Piccolo opens outside a transaction, takes milliseconds)."""
    path = str(DB.path)
    conn = _readers.get(path)
    if conn is None:
        conn = sqlite3.connect(path, detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
                               check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA query_only = 1")
        conn.row_factory = _RowsAsDicts()
        _readers[path] = conn
    return conn


async def read_rows(sql: str, *args: object) -> list:
    """A parameterised read (``{}`` placeholders) on the fast path, rows indexable by column name: SQLite
    through the process's read connection, PostgreSQL straight to asyncpg on the current transaction or
    the pool (Piccolo's QueryString costs a few microseconds per argument in Python)."""
    if is_sqlite():
        return _sqlite_reader().execute(sql.replace("{}", "?"), args).fetchall()
    native = _native_sql(sql)
    transaction = DB.current_transaction.get()
    if transaction is not None:
        return await transaction.connection.fetch(native, *args)
    if DB.pool is None:  # a one-off command that started no pool
        return await DB.run_querystring(QueryString(sql, *args))
    async with DB.pool.acquire() as connection:
        return await connection.fetch(native, *args)


def read_moment(value: object) -> dt.datetime | None:
    """A timestamp a read computed (``MAX``, a subquery) rather than took from a column: asyncpg answers
    a datetime; SQLite knows no type for such a value and answers the text Piccolo stored."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
    return value


def any_of(column: str, values: Sequence) -> tuple[str, tuple]:
    """``column`` matching any of ``values``, as a condition and its arguments for :func:`read_rows`: one
    placeholder per value on SQLite; on PostgreSQL one array, whose statement text then stays the same
    for every batch size, so asyncpg prepares it once per connection (one value: a plain comparison)."""
    if is_sqlite():
        return f"{column} IN ({placeholders(len(values))})", tuple(values)
    if len(values) == 1:
        # PostgreSQL plans ``= ANY($1)`` for a guessed ten values, so a prepared lookup of one value
        # never earns a generic plan and is planned afresh each time (0.4 ms, three times its
        # execution); ``= $1`` is planned once per connection
        return f"{column} = {{}}", (values[0],)
    return f"{column} = ANY({{}})", (list(values),)


_native_texts: dict[str, str] = {}


def _native_sql(sql: str) -> str:
    """``{}`` placeholders numbered as PostgreSQL's ``$1, $2, ...``, remembered per statement."""
    text = _native_texts.get(sql)
    if text is None:
        if len(_native_texts) >= 512:
            _native_texts.clear()
        pieces = sql.split("{}")
        text = _native_texts[sql] = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
    return text


async def where_in(sql: str, values: list, *before: object) -> list[dict]:
    """``sql`` (a SELECT, UPDATE or DELETE) with its last ``{}`` expanded to one placeholder per value, run
    on the current transaction; no query at all for no values. ``before`` fills the earlier ``{}``.

    The batch paths' lookups by up to a few thousand keys: Piccolo's ``is_in`` costs about 10 us per value
    in Python, this a tenth of that.
    """
    if not values:
        return []
    head, _, tail = sql.rpartition("{}")
    return await in_transaction(head + placeholders(len(values)) + tail, *before, *values)


async def in_transaction(sql: str, *args: object) -> list[dict]:
    """``sql`` (``{}`` placeholders) on the current transaction, as it sees the rows; outside one, through
    Piccolo. Straight to the driver: a Piccolo query costs a few microseconds per argument in Python,
    and on SQLite a second statement of its own (``PRAGMA foreign_keys``) each time."""
    transaction = DB.current_transaction.get()
    if transaction is None:
        return await run_sql(sql, *args)
    if is_sqlite():
        async with transaction.connection.execute(sql.replace("{}", "?"), args) as cursor:
            return list(await cursor.fetchall())
    return [dict(row) for row in await transaction.connection.fetch(_native_sql(sql), *args)]


def placeholders(count: int) -> str:
    return ", ".join("{}" for _ in range(count))
