"""Requests for one bill queue without a database connection, bounded in number and in time."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.service.bill_queue import BillBusy, BillQueue


async def test_one_at_a_time_per_bill_others_unaffected():
    queue = BillQueue(max_waiters=10)
    inside: list[str] = []
    order: list[str] = []

    async def hold(bill: str, name: str, release: asyncio.Event) -> None:
        async with queue.turn(bill, time.monotonic() + 5):
            inside.append(name)
            order.append(name)
            await release.wait()
            inside.remove(name)

    release_a = asyncio.Event()
    first = asyncio.create_task(hold("A", "a1", release_a))
    second = asyncio.create_task(hold("A", "a2", release_a))
    other = asyncio.create_task(hold("B", "b1", asyncio.Event()))
    await asyncio.sleep(0.01)
    assert sorted(inside) == ["a1", "b1"]  # a2 waits for a1; b1 is not delayed by bill A
    assert queue.waiting() == 3
    release_a.set()
    await asyncio.gather(first, second)
    assert order == ["a1", "b1", "a2"]
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert queue.waiting() == 0 and queue._locks == {}


async def test_waiters_beyond_the_cap_are_refused_at_once():
    queue = BillQueue(max_waiters=2)
    release = asyncio.Event()

    async def hold() -> None:
        async with queue.turn("A", time.monotonic() + 5):
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(BillBusy, match="2 requests already wait"):
        async with queue.turn("A", time.monotonic() + 5):
            pass
    release.set()
    await asyncio.gather(*tasks)


async def test_a_wait_ends_at_the_deadline():
    queue = BillQueue(max_waiters=5)
    release = asyncio.Event()

    async def hold() -> None:
        async with queue.turn("A", time.monotonic() + 5):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    with pytest.raises(BillBusy, match="deadline"):
        async with queue.turn("A", time.monotonic() + 0.05):
            pass
    assert queue.waiting() == 1
    release.set()
    await holder
    assert queue.waiting() == 0
