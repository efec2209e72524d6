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


async def test_killed_worker_loses_no_notice_and_resends_only_the_same_one(client, cli_env, tmp_path):
    import asyncio
    import base64
    import json
    import os
    import random
    import signal
    import time
    from collections import defaultdict

    from app.services import streams
    from app.storage.tables import Notice
    from tests.support import send_event
    from tests.support_receivers import Receiver

    rng = random.Random(11)
    with Receiver("slow") as receiver:
        await streams.add_platform("Renewal App", push_url=receiver.url, all_subjects=True)
        carrier = await make_carrier()
        for i in range(120):
            assert (await send_event(client, carrier, "number.disconnected", f"+8613900{i:06d}")).status_code == 202
        expected = {r["id"].hex for r in await Notice.select(Notice.id)}
        assert len(expected) == 120
        env = {**cli_env, "HEIRLINE_DELIVERY_LEASE_SECONDS": "2"}
        log = open(tmp_path / "worker.log", "a")

        def start():
            return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--capacity", "8"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)

        kills = 0
        for _ in range(3):
            worker = start()
            await asyncio.sleep(rng.uniform(0.8, 1.6))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            kills += 1
        worker = start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if await Notice.count().where(Notice.status != "delivered") == 0:
                break
            await asyncio.sleep(0.5)
        worker.terminate()
        worker.wait(timeout=30)
        bodies = defaultdict(set)
        for _, body in receiver.requests:
            payload = body.split(b".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
            bodies[claims["jti"]].add(body)
    assert kills == 3
    assert await Notice.count().where(Notice.status != "delivered") == 0  # none lost
    assert set(bodies) == expected  # every notice reached the platform, and nothing else did
    assert all(len(versions) == 1 for versions in bodies.values())  # a re-send is the very same SET (same jti)
    resent = len(receiver.requests) - len(expected)
    print(json.dumps({"kills": kills, "notices": len(expected), "resent_after_crash": resent}))
    verify = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], env=cli_env, capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0
