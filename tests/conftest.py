"""Test set-up: real databases, real HTTP, real SMTP, real Chromium.

The suite runs on the embedded SQLite by default and on PostgreSQL when
``HEIRLINE_DATABASE_URL=postgresql://...`` is set. Settings are read once, so the environment is
prepared here, before anything from ``app`` is imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_RUN_DIR = Path(tempfile.mkdtemp(prefix="heirline-tests-"))
os.environ["HEIRLINE_ENV"] = "test"
os.environ["HEIRLINE_VAR_DIR"] = str(_RUN_DIR / "var")
os.environ["HEIRLINE_DB_POOL_SIZE"] = "0"  # the test client runs the app on another event loop
os.environ.setdefault("HEIRLINE_DATABASE_URL", f"sqlite:///{_RUN_DIR / 'template.sqlite'}")
os.environ["PICCOLO_CONF"] = "app.piccolo_conf"
os.environ["HEIRLINE_OUTBOUND_ALLOWLIST"] = "127.0.0.1"  # the tests' local receivers
for name in ("HEIRLINE_SMTP_URL", "HEIRLINE_SMS_GATEWAY_URL", "HEIRLINE_SECRET_KEY", "HEIRLINE_KEK"):
    os.environ.pop(name, None)

import pytest  # noqa: E402
import pytest_asyncio  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from piccolo.apps.migrations.commands.forwards import run_forwards  # noqa: E402

from app.services import catalog  # noqa: E402
from app.storage.engine import DB, is_sqlite, run_sql  # noqa: E402
from app.storage.tables import ALL_TABLES  # noqa: E402
from tests.support import Owner, sign_up  # noqa: E402

TEMPLATE = _RUN_DIR / "template.sqlite"
SQLITE = is_sqlite()


async def _migrate() -> None:
    result = await run_forwards(app_name="heirline", migration_id="all", fake=False)
    assert result.success, result.message
    await catalog.seed()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def migrated_template():
    """Migrate once per run: a template SQLite file, or the PostgreSQL database from scratch."""
    if SQLITE:
        await _migrate()
        await run_sql("PRAGMA journal_mode=DELETE")
    else:
        await run_sql("DROP SCHEMA public CASCADE")
        await run_sql("CREATE SCHEMA public")
        await _migrate()
    yield


@pytest.fixture
async def db(migrated_template, tmp_path):
    """A fresh, migrated database for each test: a copy of the template, or truncated tables."""
    from app.crypto import sets

    sets.forget_active()  # signing keys live in the database that is about to change
    if SQLITE:
        path = tmp_path / "heirline.sqlite"
        shutil.copyfile(TEMPLATE, path)
        previous = DB.path
        DB.path = str(path)
        await run_sql("PRAGMA journal_mode=WAL")
        yield str(path)
        DB.path = previous
    else:
        names = ", ".join(f'"{t._meta.tablename}"' for t in ALL_TABLES if t._meta.tablename != "platform")
        await run_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        yield os.environ["HEIRLINE_DATABASE_URL"]


@pytest.fixture
def database_url(db) -> str:
    return f"sqlite:///{db}" if SQLITE else db


@pytest.fixture
def cli_env(database_url) -> dict[str, str]:
    """Environment for running `heirline` as a subprocess against this test's database."""
    env = dict(os.environ)
    env["HEIRLINE_DATABASE_URL"] = database_url
    return env


@pytest.fixture
async def client(db):
    from app.asgi import create_app

    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False  # tests look at each 303 themselves
        yield test_client


@pytest.fixture
async def owner(client) -> Owner:
    return await sign_up(client, "+8613800138000")


@pytest.fixture
async def other_owner(client) -> Owner:
    return await sign_up(client, "+8613900139000")
