"""Requests of one process for the same bill wait here, holding no database connection.

Without it, every payment of a bill that is locked (a slow payment, an import batch, a bank retransmitting
the same message twenty times) holds a pool connection while it waits for the row lock, and a handful of
them drain the pool for every other bill (spec/domain.md invariant 3: a wait on one bill never delays
requests for other bills). Here they queue in Python, one at a time per bill reaches the database, the
wait is bounded by the request's deadline, and at most ``max_waiters`` queue per bill (more: RC 91 at once).
Across processes the database row lock still orders them, bounded by ``lock_timeout``.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Hashable

from gateway import metrics


class BillBusy(Exception):
    """Too many requests already wait for this bill, or the wait outlived the request's deadline."""


class BillQueue:
    def __init__(self, max_waiters: int):
        self.max_waiters = max_waiters
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: dict[Hashable, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, bill: Hashable, deadline: float) -> AsyncIterator[None]:
        """Hold the bill's turn until the block ends; ``deadline`` is ``time.monotonic()`` based."""
        if self._waiting.get(bill, 0) >= self.max_waiters:
            raise BillBusy(f"{self.max_waiters} requests already wait for this bill")
        lock = self._locks.setdefault(bill, asyncio.Lock())
        self._waiting[bill] = self._waiting.get(bill, 0) + 1
        metrics.BILL_WAITERS.inc()
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout=max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise BillBusy("the bill stayed busy until the request's deadline") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            metrics.BILL_WAITERS.dec()
            self._waiting[bill] -= 1
            if self._waiting[bill] == 0:
                # The last one out forgets the bill: the table holds only bills with requests in progress.
                del self._waiting[bill]
                self._locks.pop(bill, None)

    def waiting(self) -> int:
        return sum(self._waiting.values())
