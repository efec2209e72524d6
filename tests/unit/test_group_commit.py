"""Group commit: concurrent submissions are applied together, each caller gets its own result."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from app.storage.group_commit import GroupCommit

inherited = contextvars.ContextVar("inherited", default="unset")


async def test_concurrent_items_share_a_group_and_each_gets_its_own_result():
    groups: list[list[int]] = []

    async def apply(items):
        groups.append(list(items))
        await asyncio.sleep(0.01)  # while this group is written, the next callers queue
        return [item * 10 for item in items]

    committer = GroupCommit(apply)
    first = await asyncio.gather(*(committer.submit(i) for i in range(5)))
    assert first == [0, 10, 20, 30, 40]
    assert groups == [[0, 1, 2, 3, 4]]

    later = [asyncio.ensure_future(committer.submit(5))]
    await asyncio.sleep(0.001)  # the group of 5 is being written: these queue behind it
    later += [asyncio.ensure_future(committer.submit(i)) for i in (6, 7)]
    assert await asyncio.gather(*later) == [50, 60, 70]
    assert groups[1:] == [[5], [6, 7]]


async def test_a_failed_item_fails_only_its_caller_and_a_failed_group_fails_all():
    async def apply(items):
        if "all" in items:
            raise RuntimeError("the transaction failed")
        return [ValueError(item) if item == "bad" else item.upper() for item in items]

    committer = GroupCommit(apply)
    answers = await asyncio.gather(committer.submit("a"), committer.submit("bad"), committer.submit("c"),
                                   return_exceptions=True)
    assert answers[0] == "A" and answers[2] == "C" and isinstance(answers[1], ValueError)
    answers = await asyncio.gather(committer.submit("x"), committer.submit("all"), return_exceptions=True)
    assert [str(a) for a in answers] == ["the transaction failed"] * 2
    assert await committer.submit("y") == "Y"  # the writer goes on


async def test_the_wait_gathers_late_arrivals_and_the_size_caps_a_group():
    groups: list[list[int]] = []

    async def apply(items):
        groups.append(list(items))
        return list(items)

    committer = GroupCommit(apply, max_group=3, max_wait=0.05)
    pending = [asyncio.ensure_future(committer.submit(0))]
    await asyncio.sleep(0.01)
    pending += [asyncio.ensure_future(committer.submit(i)) for i in (1, 2, 3)]
    await asyncio.gather(*pending)
    assert groups == [[0, 1, 2], [3]]


async def test_items_arriving_while_the_turn_is_awaited_join_the_group():
    """With a turn (SQLite's writer locks, held meanwhile by another process's group), the group is
    taken once the turn is held: what arrives during the wait is written with it, not after it."""
    groups: list[list[int]] = []
    other_process = asyncio.Lock()

    async def apply(items):
        assert other_process.locked()  # applied within the turn
        groups.append(list(items))
        return list(items)

    committer = GroupCommit(apply, turn=lambda: other_process)
    await other_process.acquire()
    pending = [asyncio.ensure_future(committer.submit(0))]
    await asyncio.sleep(0.01)  # the writer has taken item 0 and waits for the turn
    pending += [asyncio.ensure_future(committer.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    other_process.release()
    assert await asyncio.gather(*pending) == [0, 1, 2]
    assert groups == [[0, 1, 2]]


async def test_the_writer_does_not_run_in_its_first_callers_context():
    """A caller's open transaction lives in a context variable: the group must not join it."""
    seen = []

    async def apply(items):
        seen.append(inherited.get())
        return items

    committer = GroupCommit(apply)
    inherited.set("the caller's transaction")
    assert await committer.submit(1) == 1
    assert seen == ["unset"]


@pytest.mark.parametrize("size", [1, 40])
async def test_entries_recorded_on_their_own_are_chained_and_committed_together(db, size, monkeypatch):
    from app import audit

    transactions = []
    record_many = audit.record_many

    async def counting(entries):
        transactions.append(len(entries))
        await record_many(entries)

    monkeypatch.setattr(audit, "record_many", counting)
    await asyncio.gather(*(audit.record_on_its_own("clearance:clear", actor="carrier:x", subject=f"{i} numbers")
                           for i in range(size)))
    assert sum(transactions) == size and len(transactions) <= 2
    assert (await audit.verify()).ok
    assert (await audit.verify()).entries == size
