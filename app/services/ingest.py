"""Group commit for the carrier hook: events from concurrent requests share one transaction.

Each request waits until its event is committed (a 202 is only sent for durable work), but a burst
of events costs one transaction and a handful of queries per group instead of per event.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from app.services import lifecycle

log = logging.getLogger("heirline.ingest")
MAX_GROUP = 256
MAX_WAIT_SECONDS = 0.004


class GroupCommit:
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.writer: asyncio.Task | None = None

    async def submit(self, carrier: dict, event: lifecycle.EventInput) -> lifecycle.Outcome:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((carrier, event, future))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout=5)
            except asyncio.TimeoutError:
                return  # idle: the next submit starts a new writer
            group = [first]
            deadline = loop.time() + MAX_WAIT_SECONDS
            while len(group) < MAX_GROUP:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    group.append(await asyncio.wait_for(self.queue.get(), timeout=remaining))
                except asyncio.TimeoutError:
                    break
            log.debug("committing a group of %d hook events", len(group))
            by_carrier: dict = {}
            for carrier, event, future in group:
                by_carrier.setdefault(carrier["id"], (carrier, []))[1].append((event, future))
            for carrier, items in by_carrier.values():
                try:
                    outcomes = await lifecycle.apply(carrier, [event for event, _ in items])
                except Exception as exc:  # the whole group failed: every waiting request learns it
                    for _, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(items, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)


_committers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit]" = weakref.WeakKeyDictionary()


async def submit(carrier: dict, event: lifecycle.EventInput) -> lifecycle.Outcome:
    loop = asyncio.get_running_loop()
    committer = _committers.get(loop)
    if committer is None:
        committer = _committers[loop] = GroupCommit()
    return await committer.submit(carrier, event)
