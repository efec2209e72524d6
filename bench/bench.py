"""Heirline benchmarks: each workload prints our figure beside the same database work done by the
raw driver (sqlite3 / asyncpg) in the same run, and the ratio.

    python bench/bench.py all                       # every workload, SQLite and PostgreSQL
    python bench/bench.py ingest --engine sqlite    # one workload on one engine
    python bench/bench.py import --engine postgres --rows 1000000
    python bench/bench.py clearance --numbers 10000 100000 1000000
    python bench/bench.py ingest --registry 10000 100000 1000000   # the hook as the registry grows (import too)

The server runs as a user would run it (`heirline serve --workers 2`) in its own processes. Load for
single requests (hook events, clearance lookups) comes from wrk in its own process when it is
installed (`apt-get install wrk`; closed loop, 64 connections, --seconds long), else from this process
(aiohttp); batches and fan-out receivers use aiohttp. On a 2-core machine they share the cores: the
figures are a floor, not a ceiling. Medians of repeated runs are quoted in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.domain.numbers import normalize

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "heirline_bench"
SECRET = "b" * 48
KEK = "k1:" + base64.urlsafe_b64encode(b"\x07" * 32).decode()


# ---------------------------------------------------------------- workspace

@contextmanager
def workspace(engine: str):
    tmp = Path(tempfile.mkdtemp(prefix="heirline-bench-"))
    env = {**os.environ, "HEIRLINE_ENV": "development", "HEIRLINE_VAR_DIR": str(tmp / "var"),
           "HEIRLINE_SECRET_KEY": SECRET, "HEIRLINE_KEK": KEK, "HEIRLINE_LOG_LEVEL": "WARNING",
           "HEIRLINE_EMBEDDED_WORKER": "0", "HEIRLINE_OUTBOUND_ALLOWLIST": "127.0.0.1",
           "PICCOLO_CONF": "app.piccolo_conf"}
    if engine == "sqlite":
        env["HEIRLINE_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    else:
        asyncio.run(_fresh_pg())
        env["HEIRLINE_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
    try:
        cli(env, "migrate")
        yield env, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if engine != "sqlite":  # a registry of a million numbers is over a gigabyte: not left on the server
            asyncio.run(_fresh_pg(create=False))


async def _fresh_pg(create: bool = True):
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
    if create:
        await conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    await conn.close()


def cli(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"heirline {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


PEAK_LAUNCHER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def cli_with_peak(env: dict, *args: str) -> tuple[str, float]:
    """Like :func:`cli`, and the peak resident memory of the command (and its own children) in MiB.
    Started from a small launcher: a child of this process starts with this process's peak as its own
    (Linux keeps the larger of the two across exec), and after a million-row baseline that is
    hundreds of MiB the command never used."""
    done = subprocess.run([sys.executable, "-c", PEAK_LAUNCHER, sys.executable, "-m", "app.cli", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"heirline {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout, int(done.stderr.strip().splitlines()[-1]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(env: dict, workers: int = 2):
    port = free_port()
    log = open(Path(env["HEIRLINE_VAR_DIR"]).parent / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
                                str(workers)], env={**env, "HEIRLINE_LOG_LEVEL": env.get("BENCH_SERVER_LOG", "WARNING")},
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    time.sleep(1.0)
    try:
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux); 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu(pid: int) -> list[float]:
    """CPU seconds used so far by each worker process of a server."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [cpu_seconds(int(child)) for child in children]


def split(before: list[float], after: list[float]) -> str:
    """How a run's server CPU fell on its workers, e.g. ``CPU by worker 52/48 %`` (the uneven share of
    connections a shared listening socket gives is a cause of lost throughput)."""
    used = sorted((a - b for a, b in zip(after, before)), reverse=True)
    used = [u for u in used if u > 0.05] or used
    total = sum(used) or 1.0
    return "CPU by worker " + "/".join(f"{100 * u / total:.0f}" for u in used) + " %"


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers)."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


# ---------------------------------------------------------------- load generation

async def load(requests: list[tuple[str, str, dict, bytes | None]], concurrency: int, capture: str = "") -> dict:
    """Closed-loop load: ``concurrency`` connections, each sending the next request when answered."""
    latencies: list[float] = []
    captured: list[str] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def client():
            while queue:
                method, url, headers, body = queue.pop()
                started = time.perf_counter()
                async with session.request(method, url, headers=headers, data=body) as response:
                    answer = await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if capture and response.status < 300 and json.loads(answer).get(capture):
                        captured.append(json.loads(answer)[capture])
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"count": len(latencies), "per_second": len(latencies) / elapsed, "elapsed": elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "statuses": statuses, "captured": captured}


WRK_SCRIPT = r'''
-- Heirline bench: each wrk thread sends its share of the prepared requests (raw HTTP, NUL-separated
-- in the file named by the first argument), in order, starting over when its share runs out; the
-- string member named by the third argument of each 2xx answer is written to $HEIRLINE_WRK_CAPTURED.
local threads, made = {}, 0
function setup(thread)
  thread:set("index", made)
  made = made + 1
  table.insert(threads, thread)
end
function init(args)
  local file = io.open(args[1], "rb")
  local data = file:read("*a")
  file:close()
  local count = tonumber(args[2])
  prepared, at, statuses, captured = {}, 0, {}, {}
  pattern = args[3] ~= "" and ('"' .. args[3] .. '":"([^"]*)"') or nil
  local start, n = 1, 0
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then break end
    if n % count == index then table.insert(prepared, string.sub(data, start, stop - 1)) end
    n, start = n + 1, stop + 1
  end
end
function request()
  at = at % #prepared + 1
  return prepared[at]
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if pattern and status < 300 then
    table.insert(captured, string.match(body, pattern) or "")
  end
end
function done(summary, latency, requests)
  local parts, out = {}, io.open(os.getenv("HEIRLINE_WRK_CAPTURED"), "w")
  for _, thread in ipairs(threads) do
    for _, value in ipairs(thread:get("captured")) do out:write(value, "\n") end
    for status, n in pairs(thread:get("statuses")) do
      table.insert(parts, string.format('"%d": %d', status, n))
    end
  end
  out:close()
  io.write(string.format('HEIRLINE {"responses": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, ' ..
    '"timeouts": %d, "statuses": [{%s}]}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.timeout,
    table.concat(parts, "}, {")))
end
'''


def load_wrk(requests: list[tuple[str, str, dict, bytes | None]], concurrency: int, seconds: int,
             capture: str = "") -> dict:
    """Closed-loop load from wrk (a C load generator, `apt-get install wrk`) in its own process:
    ``concurrency`` connections for ``seconds``, each sending the next prepared request when answered
    (the list starts over if the run outlasts it). Far cheaper per request than an asyncio client, so
    more of the two cores is left to the server. ``capture`` names a string member collected from each
    2xx answer (``captured``)."""
    base = requests[0][1].split("/", 3)
    host = base[2]
    threads = 1 if concurrency < 128 else 2
    with tempfile.TemporaryDirectory(prefix="heirline-wrk-") as tmp:
        with open(Path(tmp) / "requests", "wb") as out:
            for method, url, headers, body in requests:
                path = "/" + url.split("/", 3)[3]
                lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
                lines += [f"{name}: {value}" for name, value in headers.items()]
                if body is not None:
                    lines.append(f"Content-Length: {len(body)}")
                out.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"") + b"\0")
        (Path(tmp) / "script.lua").write_text(WRK_SCRIPT)
        done = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s",
                               "-s", str(Path(tmp) / "script.lua"), f"{base[0]}//{host}/", "--",
                               str(Path(tmp) / "requests"), str(threads), capture],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "HEIRLINE_WRK_CAPTURED": str(Path(tmp) / "captured")})
        captured = [line for line in (Path(tmp) / "captured").read_text().splitlines() if line]
    line = next(line for line in done.stdout.splitlines() if line.startswith("HEIRLINE "))
    result = json.loads(line.removeprefix("HEIRLINE "))
    statuses: dict[int, int] = {}
    for part in result.pop("statuses"):
        for status, n in part.items():
            statuses[int(status)] = statuses.get(int(status), 0) + n
    return {"count": result["responses"], "per_second": result["responses"] / result["seconds"],
            "elapsed": result["seconds"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
            "statuses": statuses, "timeouts": result["timeouts"], "generator": "wrk", "captured": captured}


def drive(requests: list[tuple[str, str, dict, bytes | None]], concurrency: int, capture: str = "") -> dict:
    """The load of a single-request workload: wrk when installed, else the asyncio client."""
    if shutil.which("wrk"):
        return load_wrk(requests, concurrency, SECONDS[0], capture)
    result = asyncio.run(load(requests, concurrency, capture))
    return {**result, "timeouts": 0, "generator": "aiohttp (install wrk for a lighter load generator)"}


SECONDS = [10]
RESULTS: dict[str, list[tuple[float, float, str]]] = {}  # "engine: figure" -> (ours, raw, unit) per run
ENGINE = [""]


def report(name: str, ours: float, raw: float, unit: str, extra: str = "") -> None:
    RESULTS.setdefault(f"{ENGINE[0]}: {name}", []).append((ours, raw, unit))
    ratio = ours / raw if raw else float("nan")
    print(f"  {name:46} ours {ours:>11,.0f} {unit:10} raw driver {raw:>11,.0f} {unit:10} ratio {ratio:5.2f}"
          + (f"   {extra}" if extra else ""), flush=True)


# ---------------------------------------------------------------- raw driver access (seeding and baselines)

class Raw:
    """The raw driver on the benchmark database: sqlite3, or asyncpg run synchronously."""

    def __init__(self, env: dict):
        self.url = env["HEIRLINE_DATABASE_URL"]
        self.sqlite = self.url.startswith("sqlite")
        if self.sqlite:
            self.conn = sqlite3.connect(self.url.split("sqlite:///", 1)[1], isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys = 1")  # as Heirline's writer: the same checks on every insert
        else:
            import asyncpg

            self.loop = asyncio.new_event_loop()
            self.conn = self.loop.run_until_complete(asyncpg.connect(self.url))

    def value(self, v):
        if self.sqlite:
            if isinstance(v, uuid.UUID):
                return str(v)
            if isinstance(v, dt.datetime):
                return str(v)
        return v

    def sql(self, text: str) -> str:
        if self.sqlite:
            return text
        out, n = [], 0
        for ch in text:
            if ch == "?":
                n += 1
                out.append(f"${n}")
            else:
                out.append(ch)
        return "".join(out)

    def executemany(self, text: str, rows: list[tuple], per_txn: int = 20000) -> None:
        for start in range(0, len(rows), per_txn):
            chunk = [tuple(self.value(v) for v in row) for row in rows[start:start + per_txn]]
            if self.sqlite:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(text, chunk)
                self.conn.execute("COMMIT")
            else:
                async def run():
                    async with self.conn.transaction():
                        await self.conn.executemany(self.sql(text), chunk)

                self.loop.run_until_complete(run())

    def native(self, rows: list[tuple]) -> list[tuple]:
        """Rows with their values as this driver takes them (text ids and times for sqlite3)."""
        return [tuple(self.value(v) for v in row) for row in rows] if self.sqlite else rows

    def write_together(self, tables: list[tuple[str, tuple[str, ...], list[tuple]]]) -> None:
        """Rows for several tables, (table, columns, rows as :meth:`native` gives them), in one
        transaction: executemany on SQLite, COPY on PostgreSQL."""
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            for table, columns, rows in tables:
                self.conn.executemany(f'INSERT INTO {table} ({", ".join(columns)}) VALUES '
                                      f'({", ".join("?" * len(columns))})', rows)
            self.conn.execute("COMMIT")
        else:
            async def run():
                async with self.conn.transaction():
                    for table, columns, rows in tables:
                        await self.conn.copy_records_to_table(table, records=rows, columns=columns)

            self.loop.run_until_complete(run())

    def fetch(self, text: str, *args):
        args = tuple(self.value(a) for a in args)
        if self.sqlite:
            return self.conn.execute(text, args).fetchall()
        return self.loop.run_until_complete(self.conn.fetch(self.sql(text), *args))

    def close(self):
        if self.sqlite:
            self.conn.close()
        else:
            self.loop.run_until_complete(self.conn.close())
            self.loop.close()


def seed_registry(raw: Raw, carrier_id: str, numbers: int, tasks_per_case: int, prefix: str = "+86138") -> list[str]:
    """``numbers`` disconnected numbers with an open case of ``tasks_per_case`` tasks each (raw driver)."""
    platforms = [r[0] for r in raw.fetch("SELECT id FROM platform ORDER BY slug")][:tasks_per_case]
    now = dt.datetime.now(dt.timezone.utc)
    e164s = [f"{prefix}{i:08d}" for i in range(numbers)]
    cid = uuid.UUID(carrier_id)
    chunk = 100_000
    for start in range(0, numbers, chunk):
        part = e164s[start:start + chunk]
        phone_ids = [uuid.uuid4() for _ in part]
        tenure_ids = [uuid.uuid4() for _ in part]
        case_ids = [uuid.uuid4() for _ in part]
        raw.executemany("INSERT INTO phone_number (id, e164, region, carrier, created_at) VALUES (?, ?, ?, ?, ?)",
                        [(p, e, "CN", cid, now) for p, e in zip(phone_ids, part)])
        raw.executemany("INSERT INTO tenure (id, number, seq, status, started_at, ended_at) VALUES (?, ?, 1, "
                        "'disconnected', ?, NULL)", [(t, p, now) for t, p in zip(tenure_ids, phone_ids)])
        raw.executemany(
            "INSERT INTO release_case (id, number, tenure, carrier, reason, jurisdiction, line_class, disconnected_at,"
            " earliest_clear_at, notify_at, blocked_until, status, subscriber_ref, carrier_case_id, opened_at,"
            " closed_at, notices_at) VALUES (?, ?, ?, ?, 'voluntary', 'CN', 'residential', ?, ?, ?, NULL, 'open', '',"
            " '', ?, NULL, ?)",
            [(c, p, t, cid, now, now + dt.timedelta(days=90), now, now, now)
             for c, p, t in zip(case_ids, phone_ids, tenure_ids)])
        raw.executemany(
            'INSERT INTO release_task (id, "case", binding, platform, action, heir, status, created_at, updated_at)'
            " VALUES (?, ?, NULL, ?, 'unbind', NULL, 'pending', ?, ?)",
            [(uuid.uuid4(), c, pl, now, now) for c in case_ids for pl in platforms])
    analyze(raw)
    return e164s


def analyze(raw: Raw) -> None:
    """Refresh planner statistics after a bulk load, as autovacuum would soon do in production."""
    if raw.sqlite:
        raw.conn.execute("ANALYZE")
    else:
        raw.loop.run_until_complete(raw.conn.execute("ANALYZE"))


# ---------------------------------------------------------------- W1: hook ingest

def sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    import hmac

    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def hold_numbers(raw: Raw, carrier_id: str, registry: int) -> None:
    """``registry`` disconnected numbers, each with an open case of 5 tasks, put in the registry before a
    run (``--registry``), apart from the numbers the run itself uses."""
    if registry:
        started = time.perf_counter()
        seed_registry(raw, carrier_id, registry, 5, prefix="+86131")
        print(f"  seeded {registry:,} numbers in {time.perf_counter() - started:.0f} s", flush=True)


def at_size(registry: int) -> str:
    """What a figure's name adds for a run with ``registry`` numbers held (each size its own median)."""
    return f" at {registry:,} numbers" if registry else ""


def bench_ingest(engine: str, events: int, concurrency: int, registry: int = 0) -> None:
    """Signed disconnections over HTTP, half for registered numbers with 5 bindings; ``registry`` more
    numbers (each disconnected, with an open case of 5 tasks) already in the registry before the run."""
    held = f", {registry:,} numbers already held" if registry else ""
    print(f"\nW1 carrier hook ingest ({engine}, {events} events{held}, {concurrency} connections, serve --workers 2)")
    with workspace(engine) as (env, _):
        creds = json.loads(cli(env, "carriers", "add", "Bench Mobile", "--jurisdiction", "CN", "--json"))
        raw = Raw(env)
        registered = seed_owners(raw, events // 2)
        hold_numbers(raw, creds["id"], registry)
        raw.close()
        now = int(time.time())
        fresh = [f"+86139{i:08d}" for i in range(events - len(registered))]
        numbers = registered + fresh
        random.Random(7).shuffle(numbers)
        with server(env) as (base, process):
            requests = []
            for i, number in enumerate(numbers):
                moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
                body = json.dumps({"type": "number.disconnected", "timestamp": moment, "data": {
                    "phone_number": number, "disconnected_at": moment, "reason": "voluntary",
                    "line_class": "residential"}}).encode()
                msg_id = f"msg_bench_{i}"
                headers = {"content-type": "application/json", "webhook-id": msg_id,
                           "webhook-timestamp": str(now), "webhook-signature": sign(creds["webhook_secret"], msg_id,
                                                                                    now, body)}
                requests.append(("POST", f"{base}/hooks/carriers/{creds['id']}/v1", headers, body))
            before = workers_cpu(process.pid)
            result = drive(requests, concurrency, capture="case_id")
            after = workers_cpu(process.pid)
            spread = split(before, after)
            server_cpu = sum(after) - sum(before)
        raw = Raw(env)
        stored = raw.fetch("SELECT count(*) FROM number_event")[0][0]
        cases = {row[0] for row in raw.fetch("SELECT CAST(id AS TEXT) FROM release_case")}
        accepted = result["statuses"].get(202, 0)
        if accepted >= len(requests):
            print("  !! every prepared event was sent before the run ended: raise --events", flush=True)
        raw_rate = raw_ingest_baseline(raw, 2000)
        raw.close()
    # every acknowledged disconnection names the case it opened: each must be in the database
    acknowledged = set(result["captured"])
    lost = acknowledged - cases
    report(f"hook events/s{at_size(registry)}", accepted / result["elapsed"], raw_rate,
           "events/s",
           f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms; answers {result['statuses']}; "
           f"stored: {stored} events, {len(acknowledged) - len(lost)} of {len(acknowledged)} acknowledged cases; "
           f"load from {result['generator']}; {spread}, "
           f"{server_cpu / max(result['count'], 1) * 1e6:,.0f} us of server CPU per request")
    if lost or len(acknowledged) < accepted:
        print(f"  !! {len(lost)} acknowledged events missing from the database, "
              f"{accepted - len(acknowledged)} acknowledged without a case", flush=True)


def seed_owners(raw: Raw, owners: int, bindings: int = 5) -> list[str]:
    """Registered numbers: an owner with ``bindings`` bindings each (raw driver; dummy password and key)."""
    platforms = [r[0] for r in raw.fetch("SELECT id FROM platform ORDER BY slug")][:bindings]
    now = dt.datetime.now(dt.timezone.utc)
    e164s = [f"+86137{i:08d}" for i in range(owners)]
    phones = [uuid.uuid4() for _ in e164s]
    tenures = [uuid.uuid4() for _ in e164s]
    owner_ids = [uuid.uuid4() for _ in e164s]
    raw.executemany("INSERT INTO phone_number (id, e164, region, carrier, created_at) VALUES (?, ?, 'CN', NULL, ?)",
                    [(p, e, now) for p, e in zip(phones, e164s)])
    raw.executemany("INSERT INTO tenure (id, number, seq, status, started_at, ended_at) VALUES (?, ?, 1, 'active', ?,"
                    " NULL)", [(t, p, now) for t, p in zip(tenures, phones)])
    raw.executemany("INSERT INTO owner (id, tenure, password_hash, data_key, kek_id, locale, status, created_at)"
                    " VALUES (?, ?, 'x', ?, 'k1', 'zh', 'active', ?)",
                    [(o, t, b"\0" * 60, now) for o, t in zip(owner_ids, tenures)])
    raw.executemany("INSERT INTO binding (id, owner, platform, binding_types, account_hint_ct, instructions_ct,"
                    " disposition, heir, created_at, updated_at) VALUES (?, ?, ?, 'login', NULL, NULL, 'unbind', NULL,"
                    " ?, ?)", [(uuid.uuid4(), o, p, now, now) for o in owner_ids for p in platforms])
    return e164s


def raw_ingest_baseline(raw: Raw, events: int) -> float:
    """The same rows a disconnection writes (event, number, tenure, case, 5 tasks, audit), one durable
    transaction per event, with the raw driver on one connection."""
    now = dt.datetime.now(dt.timezone.utc)
    platform = raw.fetch("SELECT id FROM platform LIMIT 1")[0][0]
    carrier = raw.fetch("SELECT id FROM carrier LIMIT 1")[0][0]
    statements = [
        "INSERT INTO phone_number (id, e164, region, carrier, created_at) VALUES (?, ?, 'CN', ?, ?)",
        "INSERT INTO tenure (id, number, seq, status, started_at, ended_at) VALUES (?, ?, 1, 'disconnected', ?, NULL)",
        "INSERT INTO release_case (id, number, tenure, carrier, reason, jurisdiction, line_class, disconnected_at,"
        " earliest_clear_at, notify_at, status, opened_at) VALUES (?, ?, ?, ?, 'voluntary', 'CN', 'residential', ?, ?,"
        " ?, 'open', ?)",
        'INSERT INTO release_task (id, "case", platform, action, status, created_at, updated_at) VALUES (?, ?, ?,'
        " 'unbind', 'pending', ?, ?)",
        "INSERT INTO number_event (id, carrier, webhook_id, type, e164, received_at, answer) VALUES (?, ?, ?,"
        " 'number.disconnected', ?, ?, '{}')",
        "INSERT INTO audit_event (seq, at, actor, action, subject, owner_id, detail, prev_hash, hash) VALUES (?, ?,"
        " 'carrier', 'case:open', '', NULL, '{}', '0', '0')",
    ]
    base_seq = 10_000_000
    started = time.perf_counter()
    for i in range(events):
        phone, tenure, case = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        e164 = f"+86136{i:08d}"
        rows = [
            (statements[0], [(phone, e164, carrier, now)]),
            (statements[1], [(tenure, phone, now)]),
            (statements[2], [(case, phone, tenure, carrier, now, now, now, now)]),
            (statements[3], [(uuid.uuid4(), case, platform, now, now) for _ in range(5)]),
            (statements[4], [(uuid.uuid4(), carrier, f"raw_{i}", e164, now)]),
            (statements[5], [(base_seq + i, now)]),
        ]
        if raw.sqlite:
            raw.conn.execute("BEGIN IMMEDIATE")
            for text, values in rows:
                raw.conn.executemany(text, [tuple(raw.value(v) for v in row) for row in values])
            raw.conn.execute("COMMIT")
        else:
            async def run():
                async with raw.conn.transaction():
                    for text, values in rows:
                        await raw.conn.executemany(raw.sql(text), values)

            raw.loop.run_until_complete(run())
    return events / (time.perf_counter() - started)


# ---------------------------------------------------------------- W2: bulk import

def bench_import(engine: str, rows: int, mixed: bool = False, registry: int = 0) -> None:
    """A carrier's file of ``rows`` disconnections of numbers never seen, imported twice, into a registry
    already holding ``registry`` numbers (each disconnected, with an open case of 5 tasks)."""
    held = f", {registry:,} numbers already held" if registry else ""
    print(f"\nW2 bulk import ({engine}, {rows:,} rows{', mixed' if mixed else ''}{held})")
    with workspace(engine) as (env, tmp):
        creds = json.loads(cli(env, "carriers", "add", "Bench Mobile", "--jurisdiction", "CN", "--json"))
        if registry:
            raw = Raw(env)
            hold_numbers(raw, creds["id"], registry)
            raw.close()
        path = tmp / "disconnects.csv"
        moment = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)).replace(microsecond=0)
        order = list(range(rows))
        rng = random.Random(3)
        rng.shuffle(order)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["phone_number", "disconnected_at", "reason", "aging_ends_at", "line_class"])
            for i in order:
                if not mixed:  # one moment, one reason: the timing rules run once for the whole file
                    writer.writerow([f"+86135{i:08d}", moment.isoformat(), "voluntary", "", "residential"])
                    continue
                # a month of disconnections to the second, the reasons and line classes of a real file
                at = moment - dt.timedelta(seconds=rng.randrange(30 * 86400))
                reason = rng.choices(["voluntary", "non_payment", "subscriber_deceased", "fraud"], [70, 25, 4, 1])[0]
                aging = (at + dt.timedelta(days=120)).isoformat() if rng.random() < 0.05 else ""
                writer.writerow([f"+86135{i:08d}", at.isoformat(), reason, aging,
                                 "business" if rng.random() < 0.1 else "residential"])
        timings = []
        for attempt in ("first", "again"):
            started = time.perf_counter()
            out, peak = cli_with_peak(env, "import-disconnects", str(path), "--carrier", creds["id"])
            timings.append(time.perf_counter() - started)
            print(f"  {attempt}: {timings[-1]:.1f} s, peak RSS of the import process {peak:.0f} MiB;"
                  f" {out.strip().splitlines()[-1]}", flush=True)
        raw = Raw(env)
        raw_seconds = raw_import_baseline(raw, rows)
        raw.close()
    report(f"import rows/s (first pass){at_size(registry)}", rows / timings[0],
           rows / raw_seconds, "rows/s",
           f"first {timings[0]:.1f} s, re-import {timings[1]:.1f} s, raw {raw_seconds:.1f} s")


def ascending_ids(count: int) -> list[uuid.UUID]:
    """UUIDv7-like ids, each above every id made before it (as Heirline's own: app/storage/ids.py); random
    UUIDv4 ids would land all over the primary-key indexes the import has just filled."""
    base = time.time_ns() // 1_000_000 << 80 | 0x7000 << 64 | 0x8 << 60
    return [uuid.UUID(int=base | i) for i in range(count)]


def raw_import_baseline(raw: Raw, rows: int) -> float:
    """The database's own work in an import of numbers never seen, as the import writes them: per
    10,000 numbers (imports.BATCH) one transaction with the numbers, their tenures, cases and events,
    then one audit entry (on PostgreSQL by COPY, as the import does); every key (ids, numbers, event
    keys) in ascending order and above those already written, as the import's time-ordered ids and
    sorted rows are. Only the driver's calls are timed: each batch's rows are made, with their values
    as the driver takes them, before its clock starts (until 2026-11-25 evening the clock also ran while
    sqlite3's rows were converted, UUID and datetime objects to text, half of the SQLite figure)."""
    now = dt.datetime.now(dt.timezone.utc)
    carrier = raw.fetch("SELECT id FROM carrier LIMIT 1")[0][0]
    carrier = carrier if isinstance(carrier, uuid.UUID) else uuid.UUID(carrier)
    phones, tenures, cases, events = (ascending_ids(rows) for _ in range(4))
    keys = sorted(f"raw:{uuid.uuid4().hex}" for _ in range(rows))
    batch, spent = 10_000, 0.0
    for start in range(0, rows, batch):
        part = range(start, min(rows, start + batch))
        tables = [
            ("phone_number", ("id", "e164", "region", "carrier", "created_at"),
             [(phones[i], f"+86134{i:08d}", "CN", carrier, now) for i in part]),
            ("tenure", ("id", "number", "seq", "status", "started_at", "ended_at"),
             [(tenures[i], phones[i], 1, "disconnected", now, None) for i in part]),
            ("release_case", ("id", "number", "tenure", "carrier", "reason", "jurisdiction", "line_class",
                              "disconnected_at", "earliest_clear_at", "notify_at", "status", "opened_at", "notices_at"),
             [(cases[i], phones[i], tenures[i], carrier, "voluntary", "CN", "residential", now, now, now, "open", now, now)
              for i in part]),
            ("number_event", ("id", "carrier", "webhook_id", "type", "e164", "received_at", "answer"),
             [(events[i], carrier, keys[i], "number.disconnected", f"+86134{i:08d}", now, "{}") for i in part]),
            ("audit_event", ("seq", "at", "actor", "action", "subject", "detail", "prev_hash", "hash"),
             [(20_000_000 + start, now, "carrier", "case:open_many", "", "{}", "0", "0")]),
        ]
        tables = [(table, columns, raw.native(table_rows)) for table, columns, table_rows in tables]
        started = time.perf_counter()
        raw.write_together(tables)
        spent += time.perf_counter() - started
    return spent


# ---------------------------------------------------------------- W3: clearance

def bench_clearance(engine: str, sizes: list[int], requests: int, concurrency: int) -> None:
    for size in sizes:
        print(f"\nW3 clearance ({engine}, {size:,} numbers with 5 tasks each, {concurrency} connections)")
        with workspace(engine) as (env, _):
            creds = json.loads(cli(env, "carriers", "add", "Bench Mobile", "--jurisdiction", "CN", "--json"))
            raw = Raw(env)
            started = time.perf_counter()
            e164s = seed_registry(raw, creds["id"], size, 5)
            print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
            rng = random.Random(11)
            asked = [rng.choice(e164s) if rng.random() > 0.1 else f"+86133{rng.randrange(10**8):08d}"
                     for _ in range(requests)]
            raw_rate = raw_clearance_baseline(raw, asked[:20000])
            raw_batch_rate = raw_clearance_batch_baseline(raw, asked[:50_000])
            raw.close()
            auth = {"Authorization": f"Bearer {creds['api_token']}"}
            with server(env) as (base, process):
                single = [("GET", f"{base}/v1/numbers/{n.replace('+', '%2B')}/clearance", auth, None) for n in asked]
                ceiling = drive([("GET", f"{base}/healthz", {}, None)], concurrency)
                before = workers_cpu(process.pid)
                result = drive(single, concurrency)
                spread = split(before, middle := workers_cpu(process.pid))
                batches = [("POST", f"{base}/v1/numbers/clearance:query", {**auth, "content-type": "application/json"},
                            json.dumps({"phone_numbers": asked[i:i + 1000]}).encode())
                           for i in range(0, min(len(asked), 50_000), 1000)]
                batch = drive(batches, 4)
                batch_spread = split(middle, workers_cpu(process.pid))
                memory = rss_mib(process.pid)
        # each size its own line in the medians of --repeat
        report(f"single lookups/s{at_size(size)}", result["per_second"], raw_rate, "req/s",
               f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms; {result['statuses']}; load from "
               f"{result['generator']}, which drew {ceiling['per_second']:,.0f} req/s from GET /healthz; {spread}")
        report(f"batch numbers/s{at_size(size)}", batch["per_second"] * 1000, raw_batch_rate, "numbers/s",
               f"p50 {batch['p50_ms']:.0f} ms per 1,000 (4 connections); server RSS {memory:.0f} MiB; {batch_spread}")


CLEARANCE_SQL = ("SELECT p.id, c.id, c.status, c.earliest_clear_at, t2.status FROM phone_number p"
                 " LEFT JOIN tenure t ON t.number = p.id AND t.ended_at IS NULL"
                 " LEFT JOIN release_case c ON c.tenure = t.id"
                 ' LEFT JOIN release_task t2 ON t2."case" = c.id WHERE p.e164 = ?')


def raw_clearance_baseline(raw: Raw, asked: list[str]) -> float:
    """The same lookup (number, tenure, case, tasks) with the raw driver, one connection, in process."""
    started = time.perf_counter()
    for e164 in asked:
        raw.fetch(CLEARANCE_SQL, e164)
    return len(asked) / (time.perf_counter() - started)


def raw_clearance_batch_baseline(raw: Raw, asked: list[str]) -> float:
    """The same lookup for 1,000 numbers at a time, as the batch endpoint reads them (one statement per
    batch: ``IN`` with a placeholder per number on SQLite, ``= ANY`` of one array on PostgreSQL)."""
    started = time.perf_counter()
    for start in range(0, len(asked), 1000):
        part = asked[start:start + 1000]
        if raw.sqlite:
            raw.fetch(CLEARANCE_SQL.replace("= ?", f"IN ({', '.join('?' * len(part))})"), *part)
        else:
            raw.fetch(CLEARANCE_SQL.replace("= ?", "= ANY(?)"), part)
    return len(asked) / (time.perf_counter() - started)


# ---------------------------------------------------------------- W4: notice fan-out

RECEIVER = r'''
import asyncio, sys
from aiohttp import web
count, hanging = int(sys.argv[1]), int(sys.argv[2])
async def main():
    ports = []
    for n in range(count):
        async def handler(request, hang=n < hanging):
            await request.read()
            if hang:
                await asyncio.sleep(30)
            return web.Response(status=202)
        app = web.Application(); app.router.add_post("/events", handler)
        runner = web.AppRunner(app, access_log=None); await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)  # the kernel picks a free port: no collisions
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])
    print(",".join(map(str, ports)), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
'''


def start_receivers(count: int, hanging: int = 0) -> tuple[subprocess.Popen, list[int]]:
    """``count`` local endpoints in a process of their own, the first ``hanging`` of them never answering
    in time; their ports, as bound."""
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(count), str(hanging)], stdout=subprocess.PIPE,
                                text=True)
    ports = [int(p) for p in receiver.stdout.readline().split(",") if p.strip()]
    if len(ports) != count:
        receiver.kill()
        raise RuntimeError("the receivers did not start")
    return receiver, ports


def bench_fanout(engine: str, numbers: int, endpoints: int, workers: int = 1, delivered_before: int = 0) -> None:
    print(f"\nW4 notice fan-out ({engine}, {numbers} disconnections x {endpoints} push endpoints,"
          f" {workers} worker process{'es' if workers > 1 else ''}"
          f"{f', {delivered_before:,} notices delivered before' if delivered_before else ''})")
    results = {}
    for label, hanging in (("healthy", 0), ("10% hanging", max(1, endpoints // 10))):
        with workspace(engine) as (env, tmp):
            creds = json.loads(cli(env, "carriers", "add", "Bench Mobile", "--jurisdiction", "CN", "--json"))
            receiver, ports = start_receivers(endpoints, hanging)
            try:
                for i, port in enumerate(ports):
                    cli(env, "platforms", "add", f"Bench App {i}", "--push-url", f"http://127.0.0.1:{port}/events",
                        "--all-subjects", "--json")
                path = tmp / "d.csv"
                moment = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
                path.write_text("phone_number,disconnected_at,reason,aging_ends_at,line_class\n" + "".join(
                    f"+86132{i:08d},{moment},voluntary,,residential\n" for i in range(numbers)))
                cli(env, "import-disconnects", str(path), "--carrier", creds["id"])
                raw = Raw(env)
                total = raw.fetch("SELECT count(*) FROM notice")[0][0]
                if delivered_before:
                    add_delivered_notices(raw, delivered_before)
                healthy_total = total * (endpoints - hanging) // endpoints
                # several workers share the queue safely: each claims notices under a lease
                logs = [open(tmp / f"worker{n}.log", "w") for n in range(workers)]
                spawned = [subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--capacity", "128"], env=env,
                                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                            start_new_session=True) for log in logs]
                started = time.perf_counter()
                delivered, first = 0, None
                while time.perf_counter() - started < 300:
                    delivered = raw.fetch("SELECT count(*) FROM notice WHERE status = 'delivered'")[0][0] - delivered_before
                    if delivered and first is None:
                        first = (time.perf_counter(), delivered, sum(cpu_seconds(w.pid) for w in spawned))
                    if delivered >= healthy_total:
                        break
                    time.sleep(0.05)  # a run lasts 4-10 s: coarser polls would round its end by several %
                ended = time.perf_counter()
                # CPU per delivery is steadier than the rate on a machine whose speed drifts
                cpu = sum(cpu_seconds(worker.pid) for worker in spawned)
                for worker in spawned:
                    os.killpg(worker.pid, signal.SIGTERM)
                    worker.wait(timeout=30)
                for log in logs:
                    log.close()
                    if delivered < healthy_total:  # say why, before the workspace goes
                        print(f"  !! {log.name} ends with:\n" + "".join(Path(log.name).read_text().splitlines(True)[-15:]))
                raw.close()
                elapsed = ended - started
                results[label] = delivered / elapsed
                # the figure counts the worker's start-up (Python imports, keys): the steady rate is beside it
                if first and ended > first[0]:
                    steady = (f"first after {first[0] - started:.1f} s; {(delivered - first[1]) / (ended - first[0]):,.0f}/s"
                              f" and {(cpu - first[2]) / max(delivered - first[1], 1) * 1e6:,.0f} us of worker CPU"
                              " per delivery from then on")
                else:
                    steady = "no steady rate"
                print(f"  {label}: {delivered} of {total} notices delivered in {elapsed:.1f} s ({steady})", flush=True)
            finally:
                receiver.kill()
                receiver.wait()
    raw_rate = asyncio.run(raw_fanout_baseline(endpoints, 5000))
    report("signed deliveries/s (healthy)", results["healthy"], raw_rate, "notices/s")
    drop = 1 - results["10% hanging"] / results["healthy"]
    report("signed deliveries/s (10% hanging)", results["10% hanging"], raw_rate, "notices/s",
           f"healthy throughput fell by {drop:.0%}")


def add_delivered_notices(raw: Raw, count: int) -> None:
    """The registry's history: ``count`` notices delivered an hour ago, spread over the streams."""
    streams = [row[0] for row in raw.fetch("SELECT id FROM ssf_stream")]
    hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    raw.executemany("INSERT INTO notice (id, stream, \"case\", task, event, claims, token, kid, status, attempts,"
                    " next_attempt_at, lease_until, deadline, last_error, created_at, delivered_at) VALUES"
                    " (?, ?, NULL, NULL, 'bench', '{}', NULL, '', 'delivered', 1, ?, NULL, ?, '', ?, ?)",
                    [(uuid.uuid4(), streams[i % len(streams)], hour_ago, hour_ago, hour_ago, hour_ago)
                     for i in range(count)])


async def raw_fanout_baseline(endpoints: int, posts: int) -> float:
    """aiohttp posting the same size of body to fast local endpoints, nothing else."""
    receiver, ports = start_receivers(endpoints)
    body = b"x" * 900
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as session:
            async def post(i):
                async with session.post(f"http://127.0.0.1:{ports[i % endpoints]}/events", data=body) as r:
                    await r.read()

            started = time.perf_counter()
            for start in range(0, posts, 128):
                await asyncio.gather(*(post(i) for i in range(start, min(posts, start + 128))))
            return posts / (time.perf_counter() - started)
    finally:
        receiver.kill()
        receiver.wait()


# ---------------------------------------------------------------- W5: memory

def bench_memory(engine: str, numbers: int) -> None:
    print(f"\nW5 serving memory ({engine}, {numbers:,} numbers)")
    with workspace(engine) as (env, _):
        creds = json.loads(cli(env, "carriers", "add", "Bench Mobile", "--jurisdiction", "CN", "--json"))
        raw = Raw(env)
        e164s = seed_registry(raw, creds["id"], numbers, 5)
        raw.close()
        auth = {"Authorization": f"Bearer {creds['api_token']}"}
        with server(env, workers=1) as (base, process):
            asked = random.Random(5).sample(e164s, min(5000, len(e164s)))
            asyncio.run(load([("GET", f"{base}/v1/numbers/{n.replace('+', '%2B')}/clearance", auth, None)
                              for n in asked], 16))
            memory = rss_mib(process.pid)
    print(f"  serving process resident memory after 5,000 lookups: {memory:.0f} MiB (target <= 300 MiB)", flush=True)


# ---------------------------------------------------------------- entry point

def machine_speed(seconds: float = 1.0) -> str:
    """Two one-core gauges of this (shared, drifting) machine, so that figures from different hours can
    be compared: RSA-2048 signatures per second (what the fan-out signs with) and phone-number checks
    per second (the import's parser). Both swing by 2-4x between hours of the same virtual machine."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rates = []
    for work in (lambda i: key.sign(b"heirline", padding.PKCS1v15(), hashes.SHA256()),
                 lambda i: normalize(f"+86135{i:08d}")):
        done, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(20):
                work(done)
                done += 1
        rates.append(done / elapsed)
    return f"{rates[0]:,.0f} RSA-2048 signatures/s, {rates[1]:,.0f} phone-number checks/s (one core each)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["ingest", "import", "clearance", "fanout", "memory", "all"])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=40_000,
                        help="ingest: signed events prepared (half for registered numbers); a wrk run that "
                        "outlasts them sends them again (answered 200, not counted)")
    parser.add_argument("--seconds", type=int, default=10, help="ingest, clearance: length of a wrk run")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mixed", action="store_true",
                        help="import: rows with a month of disconnection times and mixed reasons")
    parser.add_argument("--numbers", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="clearance: the registry's sizes, one run each; memory: the largest")
    parser.add_argument("--registry", type=int, nargs="+", default=[0],
                        help="ingest, import: numbers already in the registry before the run (e.g. 10000 100000 "
                             "1000000), one run each; by default none but the run's own")
    parser.add_argument("--requests", type=int, default=20_000,
                        help="clearance: numbers asked one by one (wrk cycles through them) and in batches of 1,000")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--fanout-workers", type=int, default=1, help="`heirline worker` processes for fanout")
    parser.add_argument("--delivered", type=int, default=0,
                        help="fanout: notices already delivered before the run (the registry's history)")
    parser.add_argument("--repeat", type=int, default=1, help="run each workload N times and print the medians")
    args = parser.parse_args()
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    SECONDS[0] = args.seconds
    print(f"Heirline benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}", flush=True)
    print(f"  machine speed at the start: {machine_speed()}", flush=True)
    for engine in engines:
        ENGINE[0] = engine
        for _ in range(args.repeat):
            if args.workload in ("ingest", "all"):
                for registry in args.registry:
                    bench_ingest(engine, args.events, args.concurrency, registry)
            if args.workload in ("import", "all"):
                for registry in args.registry:
                    bench_import(engine, args.rows, args.mixed, registry)
            if args.workload in ("clearance", "all"):
                bench_clearance(engine, args.numbers, args.requests, args.concurrency)
            if args.workload in ("fanout", "all"):
                bench_fanout(engine, 500, 20, args.fanout_workers, args.delivered)
            if args.workload in ("memory", "all"):
                bench_memory(engine, max(args.numbers))
    print(f"\nmachine speed at the end: {machine_speed()}", flush=True)
    if args.repeat > 1:
        print(f"\nMedians of {args.repeat} runs")
        for name, runs in RESULTS.items():
            ours = statistics.median(r[0] for r in runs)
            raw = statistics.median(r[1] for r in runs)
            spread = ", ".join(f"{r[0]:,.0f}" for r in runs)
            print(f"  {name:56} ours {ours:>11,.0f} {runs[0][2]:10} raw driver {raw:>11,.0f}"
                  f" ratio {ours / raw if raw else float('nan'):5.2f}   runs: {spread}")

if __name__ == "__main__":
    main()
