"""Approved inquiries' quotes and message keys, written behind the answers (spec/domain.md "Quotes").

A quote and an inquiry's key are not money: the contract lets them be recorded without a synchronous
commit, within 50 ms. So an inquiry of ``gateway serve`` waits for its one read only; its quote and key
join the next batch, and a batch is written as soon as the one before it is done (group commit): one
statement right after the answer when the gateway is quiet, one statement for a few hundred inquiries
under load, asynchronously committed either way.

What must still hold, and how:

- A payment that follows its inquiry on this process finds the quote at once: the payment waits for the
  batch that holds a pending quote of its bill (:meth:`settled`) before its read.
- A repeat of an inquiry whose key is still pending is answered as stored (:meth:`pending_answer`); a
  payment or reversal that reuses a pending inquiry's key waits for it too, and then meets it as any
  reused key (RC 94).
- On another process or instance the quote is there once its batch commits: a few milliseconds after the
  answer while the database keeps up, inside the contract's 50 ms.
- A batch the database cannot take (away, too slow) is dropped and logged, as a crash would lose it: a
  payment of a lost quote gets RC 13 and the bank inquires again. A row the database refuses for its
  content costs only itself: the batch is then written row by row.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import asyncpg
import structlog

from gateway import metrics
from gateway.store import money
from gateway.store.db import UNAVAILABLE
from gateway.store.keys import StoredAnswer

log = structlog.get_logger("gateway.inquiry")

Bill = tuple[str, str]              # (tax, bill key)
Key = tuple[str, str, str]          # (channel, bank, key)
KeyValues = tuple[str, str, bytes, str, str]  # (channel, key, content hash, operation, answer as JSON text)


@dataclass(frozen=True)
class _Item:
    bank: str
    bill: Bill
    quote: money.NewQuote | None
    key_values: KeyValues | None


class InquiryRecorder:
    """Per process: started by ``gateway serve``, shared by its ISO 8583 and HTTP listeners."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float, write_timeout_s: float,
                 max_pending: int = 50_000):
        self.pool = pool
        self.acquire_timeout_s = acquire_timeout_s
        self.write_timeout_s = write_timeout_s
        # Bounds memory while the database is slow to take the batches (inquiries themselves are bounded
        # by their reads, which a database that is away refuses first).
        self.max_pending = max_pending
        self._queue: list[_Item] = []
        self._next: asyncio.Future[None] | None = None      # done when the queued items are written
        self._bills: dict[Bill, asyncio.Future[None]] = {}  # pending quotes: the batch that holds the newest
        self._keys: dict[Key, tuple[asyncio.Future[None], bytes, str, str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._writing = 0
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Inquiries whose quote and key are not yet written (queued, or in the batch being written)."""
        return len(self._queue) + self._writing

    def pending_answer(self, channel: str, bank: str, key: str) -> StoredAnswer | None:
        """The answer of a keyed inquiry not yet written, as the database will hold it."""
        entry = self._keys.get((channel, bank, key))
        if entry is None:
            return None
        _, content_hash, operation, answer = entry
        return StoredAnswer(content_hash, operation, json.loads(answer))

    def add(self, bank: str, bill: Bill, quote: money.NewQuote | None, key_values: KeyValues | None) -> StoredAnswer | None:
        """Queue an approved inquiry's quote and key. When the key is already pending (the same request
        answered a moment ago on this process), nothing is queued and that answer is returned: the
        request is its repeat."""
        if key_values is not None:
            earlier = self.pending_answer(key_values[0], bank, key_values[1])
            if earlier is not None:
                return earlier
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
            metrics.INQUIRY_RECORDS.labels("dropped").inc()
            log.warning("inquiry quote and key not recorded: too many pending", pending=len(self._queue))
            return None
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(bank, bill, quote, key_values))
        if quote is not None:
            self._bills[bill] = self._next
        if key_values is not None:
            channel, name, content_hash, operation, answer = key_values
            self._keys[(channel, bank, name)] = (self._next, content_hash, operation, answer)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inquiry-recorder")
        return None

    async def settled(self, bill: Bill | None, key: Key | None, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until no quote of ``bill`` and no inquiry under ``key`` is pending:
        then a read sees them. Past the timeout the caller goes on, as after a lost quote."""
        waits = set()
        if bill is not None and (done := self._bills.get(bill)) is not None:
            waits.add(done)
        if key is not None and (entry := self._keys.get(key)) is not None:
            waits.add(entry[0])
        if waits:
            await asyncio.wait(waits, timeout=max(timeout_s, 0.0))

    async def close(self) -> None:
        """Write what is pending (at shutdown, after the listeners have drained)."""
        task = self._task
        if task is not None:
            await asyncio.wait({task}, timeout=self.acquire_timeout_s + self.write_timeout_s)

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, done = self._queue, self._next
                self._queue, self._next = [], None
                self._writing = len(batch)
                try:
                    await self._write(batch)
                finally:
                    self._writing = 0
                    self._forget(batch, done)
        finally:
            self._task = None

    def _forget(self, batch: list[_Item], done: asyncio.Future[None] | None) -> None:
        for item in batch:
            if item.quote is not None and self._bills.get(item.bill) is done:
                del self._bills[item.bill]
            if item.key_values is not None:
                key = (item.key_values[0], item.bank, item.key_values[1])
                entry = self._keys.get(key)
                if entry is not None and entry[0] is done:
                    del self._keys[key]
        if done is not None and not done.done():
            done.set_result(None)

    async def _write(self, batch: list[_Item]) -> None:
        quotes = [(i.bank, i.quote) for i in batch if i.quote is not None]
        keys = [(i.bank, i.key_values) for i in batch if i.key_values is not None]
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn:
                await money.record_inquiries(conn, quotes, keys, timeout=self.write_timeout_s)
        except (*UNAVAILABLE, TimeoutError) as exc:
            self._lost(batch, "database unavailable", exc)
            return
        except asyncpg.PostgresError as exc:
            if len(batch) == 1:
                self._lost(batch, "refused by the database", exc)
                return
            # A row refused for its content: each row on its own, so that the others are kept.
            for item in batch:
                await self._write([item])
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not stop the next batches
            self._lost(batch, "unexpected failure", exc)
            return
        self.written += len(batch)
        metrics.INQUIRY_RECORDS.labels("written").inc(len(batch))

    def _lost(self, batch: list[_Item], why: str, exc: BaseException) -> None:
        self.dropped += len(batch)
        metrics.INQUIRY_RECORDS.labels("dropped").inc(len(batch))
        log.warning("inquiry quotes and keys not recorded: " + why, count=len(batch), error=repr(exc))
