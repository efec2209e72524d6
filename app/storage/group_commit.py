"""Group commit: work submitted by concurrent requests is written together, in one transaction.

Each caller still waits until its own item is committed (a request is answered only for durable
work), but a burst costs one transaction, one writer lock and one commit per group instead of per
item. SQLite has one writer at a time and PostgreSQL's hash-chained appends serialize on a lock, so
under load this is what lets the throughput grow with the load instead of queueing on that lock.

Reads that many requests ask at once are gathered the same way (clearance lookups: the numbers asked
while the previous statement ran are read by the next one, together).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import weakref
from contextlib import AbstractAsyncContextManager
from typing import Awaitable, Callable, Generic, TypeVar

log = logging.getLogger("heirline.group_commit")

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """``apply(items)`` writes a group and answers one result per item, in order; an item whose result
    is an exception has it raised to its caller. If ``apply`` itself raises, every caller of the group
    gets that exception.

    A group is the first item waiting plus whatever arrives within ``max_wait`` seconds (``0``: what is
    already queued, which under load is what arrived while the previous group was being written), at
    most ``max_group`` items. With ``turn`` (an async context manager, e.g. the SQLite writer's locks)
    the rest of the group is taken once the turn is held, and the group applied within it: what arrives
    while the turn is awaited joins this group. One writer per event loop, started on demand and gone
    when idle.
    """

    def __init__(self, apply: Callable[[list[Item]], Awaitable[list[Result | BaseException]]],
                 max_group: int = 256, max_wait: float = 0.0,
                 turn: Callable[[], AbstractAsyncContextManager] | None = None) -> None:
        self.apply = apply
        self.max_group = max_group
        self.max_wait = max_wait
        self.turn = turn or contextlib.nullcontext
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = weakref.WeakKeyDictionary()

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        writer = self._loops.get(loop)
        if writer is None:
            writer = self._loops[loop] = _Writer(self)
        return await writer.submit(item)


class _Writer:
    def __init__(self, group: GroupCommit) -> None:
        self.group = group
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def submit(self, item: object) -> object:
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        if self.task is None or self.task.done():
            # a context of its own: a caller's open transaction (a context variable) must not be
            # inherited by the writer, whose groups are separate transactions
            self.task = asyncio.create_task(self._run(), context=contextvars.Context())
        return await future

    async def _take(self, group: list[tuple[object, asyncio.Future]]) -> list[tuple[object, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.group.max_wait
        while len(group) < self.group.max_group:
            if not self.queue.empty():
                group.append(self.queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                group.append(await asyncio.wait_for(self.queue.get(), timeout=remaining))
            except asyncio.TimeoutError:
                break
        return group

    async def _run(self) -> None:
        while True:
            try:
                first = await asyncio.wait_for(self.queue.get(), timeout=5)
            except asyncio.TimeoutError:
                return  # idle: the next submit starts a new writer
            group = [first]
            try:
                async with self.group.turn():
                    group = await self._take(group)
                    log.debug("committing a group of %d", len(group))
                    results = await self.group.apply([item for item, _ in group])
            except Exception as exc:  # the whole group failed: every waiting caller learns it
                results = [exc] * len(group)
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
