"""Kill the server with SIGKILL at random moments while carriers push events, restart it, and check that
nothing acknowledged was lost and nothing was half-applied. Used by a short test and by
``bench/crash.py`` for long runs."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx

from tests.support import event_body, free_port, signed_headers


@dataclass
class CrashReport:
    kills: int = 0
    sent: int = 0
    acknowledged: set[str] = field(default_factory=set)
    refused: int = 0


class Server:
    def __init__(self, env: dict, log_path: str):
        self.env, self.log_path, self.port = env, log_path, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + open(self.log_path).read()[-2000:])

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


async def push_with_crashes(server: Server, carrier, numbers: list[str], kills: int, seed: int = 7,
                            concurrency: int = 16) -> CrashReport:
    """Send one `number.disconnected` per number (a carrier retries with the same webhook-id until it is
    acknowledged) while the server is killed ``kills`` times: at points spread evenly over the events
    acknowledged (so on a fast machine too every kill lands while events are still coming), each a
    random few milliseconds after its point, amid a group."""
    rng = random.Random(seed)
    report = CrashReport()
    bodies = {f"msg_crash_{i}": event_body("number.disconnected", number) for i, number in enumerate(numbers)}
    pending = list(bodies)
    stop_killing = asyncio.Event()

    async def killer():
        for point in range(1, kills + 1):
            while len(report.acknowledged) < point * len(numbers) // (kills + 1):
                if stop_killing.is_set():
                    return
                await asyncio.sleep(0.002)
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            server.kill()
            report.kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await asyncio.to_thread(server.start)

    async def send(http: httpx.AsyncClient, webhook_id: str) -> None:
        body = bodies[webhook_id]
        report.sent += 1
        try:
            response = await http.post(f"{server.base}/hooks/carriers/{carrier.id}/v1", content=body,
                                       headers=signed_headers(carrier.webhook_secret, body, webhook_id))
        except httpx.HTTPError:
            return  # not acknowledged: the carrier will retry
        if response.status_code in (200, 202):
            report.acknowledged.add(webhook_id)
        elif response.status_code < 500:
            report.refused += 1
            report.acknowledged.add(webhook_id)  # answered for good (e.g. an impossible transition)

    killing = asyncio.create_task(killer())
    async with httpx.AsyncClient(timeout=5) as http:
        while pending:
            batch, pending = pending[:concurrency], pending[concurrency:]
            await asyncio.gather(*(send(http, w) for w in batch))
            failed = [w for w in batch if w not in report.acknowledged]
            pending += failed
            await asyncio.sleep(0.1 if len(failed) == len(batch) else 0.005)  # the server is down: back off
    stop_killing.set()
    await killing
    return report


def summary(report: CrashReport) -> str:
    return json.dumps({"kills": report.kills, "requests": report.sent, "acknowledged": len(report.acknowledged),
                       "refused": report.refused})
