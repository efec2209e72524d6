"""kill -9 during hook ingest (a short run; `python bench/crash.py` runs long): every acknowledged event is
kept, no case is half-applied, and the audit log verifies."""

from __future__ import annotations

import subprocess
import sys

from app.storage.tables import Binding, NumberEvent, ReleaseCase, ReleaseTask
from tests.crash_harness import Server, push_with_crashes, summary
from tests.support import make_carrier, platform_id, sign_up


async def test_killed_server_loses_nothing_acknowledged(client, cli_env, tmp_path):
    owners = []
    for i in range(6):  # registered numbers with five bindings each; the rest unknown
        owner = await sign_up(client, f"+86138001380{i:02d}")
        for slug in ("wechat", "alipay", "weibo", "taobao", "meituan"):
            await client.post("/v1/me/bindings", headers=owner.headers, json={
                "platform_id": await platform_id(client, slug), "binding_types": ["login"], "disposition": "unbind"})
        owners.append(owner)
    carrier = await make_carrier()
    numbers = [o.phone for o in owners] + [f"+8613900{i:06d}" for i in range(200)]
    server = Server(cli_env, str(tmp_path / "server.log"))
    server.start()
    try:
        report = await push_with_crashes(server, carrier, numbers, kills=3)
    finally:
        server.stop()
    print(summary(report))
    assert report.kills >= 2 and report.refused == 0  # killed while events were still coming

    stored = {r["webhook_id"] for r in await NumberEvent.select(NumberEvent.webhook_id)}
    assert report.acknowledged <= stored and len(stored) == len(numbers)  # each event once, none lost
    cases = await ReleaseCase.select(ReleaseCase.id, ReleaseCase.number.e164.as_alias("e164"))
    assert sorted(c["e164"] for c in cases) == sorted(numbers)  # one case per disconnection, never two
    for owner in owners:  # no case half-applied: a task for every binding of the closing tenure
        case = next(c for c in cases if c["e164"] == owner.phone)
        assert await ReleaseTask.count().where(ReleaseTask.case == case["id"]) == await Binding.count().where(
            Binding.owner == owner.id) == 5
    verify = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], env=cli_env, capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
