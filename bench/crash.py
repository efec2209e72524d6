"""The long crash-consistency run: SIGKILL the server many times while a carrier pushes events.

    python bench/crash.py --engine sqlite --kills 30 --events 3000
    python bench/crash.py --engine postgres --kills 30 --events 3000

Checks at the end: every acknowledged event is stored, each number has exactly one release case, and
`heirline audit verify` passes. Prints the figures as JSON; exit 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
# importing the test helpers reads Heirline's settings, which make a var dir (keys): not in the checkout
os.environ.setdefault("HEIRLINE_VAR_DIR", tempfile.mkdtemp(prefix="heirline-crash-"))

from bench import cli, workspace  # noqa: E402  (bench/bench.py)
from tests.crash_harness import Server, push_with_crashes, summary  # noqa: E402


def stored(env: dict) -> tuple[set[str], int]:
    url = env["HEIRLINE_DATABASE_URL"]
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        ids = {r[0] for r in conn.execute("SELECT webhook_id FROM number_event")}
        duplicates = conn.execute("SELECT count(*) FROM (SELECT number FROM release_case GROUP BY number "
                                  "HAVING count(*) > 1)").fetchone()[0]
        conn.close()
        return ids, duplicates

    async def read():
        import asyncpg

        conn = await asyncpg.connect(url)
        ids = {r["webhook_id"] for r in await conn.fetch("SELECT webhook_id FROM number_event")}
        duplicates = await conn.fetchval("SELECT count(*) FROM (SELECT number FROM release_case GROUP BY number "
                                         "HAVING count(*) > 1) d")
        await conn.close()
        return ids, duplicates

    return asyncio.run(read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    with workspace(args.engine) as (env, tmp):
        creds = json.loads(cli(env, "carriers", "add", "Crash Mobile", "--jurisdiction", "CN", "--json"))
        carrier = SimpleNamespace(id=creds["id"], webhook_secret=creds["webhook_secret"])
        numbers = [f"+86139{i:08d}" for i in range(args.events)]
        server = Server({**env, "HEIRLINE_EMBEDDED_WORKER": "0"}, str(tmp / "crash-server.log"))
        server.start()
        try:
            report = asyncio.run(push_with_crashes(server, carrier, numbers, args.kills))
        finally:
            server.stop()
        ids, duplicates = stored(env)
        lost = report.acknowledged - ids
        verified = "intact" in cli(env, "audit", "verify")
        result = json.loads(summary(report)) | {"engine": args.engine, "lost": len(lost), "stored": len(ids),
                                                "numbers_with_two_cases": duplicates, "audit_verified": verified}
        print(json.dumps(result))
        if lost or duplicates or not verified or len(ids) != len(numbers):
            sys.exit(1)


if __name__ == "__main__":
    main()
