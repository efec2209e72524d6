"""A backup restored into a fresh database passes `heirline audit verify` and the owners' data decrypts."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from app.storage.engine import is_sqlite
from tests.support import make_carrier, platform_id, send_event

RESTORED_PG = "heirline_restored"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def restored(database_url: str, tmp_path) -> Iterator[str]:
    """Back up the live database and restore it into a fresh one; yields the copy's URL. A PostgreSQL
    copy is dropped afterwards, passed or failed (the temporary directory takes a SQLite one)."""
    if is_sqlite():
        source = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        copy_path = tmp_path / "restored.sqlite"
        target = sqlite3.connect(copy_path)
        source.backup(target)  # the online backup API: a consistent snapshot
        source.close()
        target.close()
        yield f"sqlite:///{copy_path}"
        return
    dump = tmp_path / "heirline.dump"
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", database_url], check=True)
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f"DROP DATABASE IF EXISTS {RESTORED_PG} WITH (FORCE)",
                    "-c", f"CREATE DATABASE {RESTORED_PG}"], check=True)
    try:
        copy = database_url.rsplit("/", 1)[0] + f"/{RESTORED_PG}"
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={copy}", str(dump)], check=True)
        yield copy
    finally:
        subprocess.run(["psql", PG_ADMIN, "-q", "-c", f"DROP DATABASE IF EXISTS {RESTORED_PG} WITH (FORCE)"],
                       check=True)


async def test_backup_restores_and_verifies(client, owner, cli_env, database_url, tmp_path):
    body = {"platform_id": await platform_id(client, "wechat"), "binding_types": ["login"], "disposition": "unbind",
            "account_hint": "wxid_backup"}
    assert (await client.post("/v1/me/bindings", json=body, headers=owner.headers)).status_code == 201
    carrier = await make_carrier()
    assert (await send_event(client, carrier, "number.disconnected", owner.phone)).status_code == 202

    with restored(database_url, tmp_path) as copy:
        env = {**cli_env, "HEIRLINE_DATABASE_URL": copy}
        verified = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
        script = ("import asyncio, json, uuid\nfrom app.services import inventory\n"
                  f"rows = asyncio.run(inventory.list_bindings(uuid.UUID('{owner.id}')))\n"
                  "print(json.dumps([r['account_hint'] for r in rows]))")
        decrypted = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": os.getcwd()},
                                   capture_output=True, text=True, timeout=120)
    assert decrypted.returncode == 0, decrypted.stderr
    assert json.loads(decrypted.stdout.strip().splitlines()[-1]) == ["wxid_backup"]
