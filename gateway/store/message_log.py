"""The message log writer: every message in and out, batched into PostgreSQL with COPY.

Writing two log rows per message synchronously would double the database work of a request, so rows are
queued and flushed in batches (every ``flush_interval_s`` or ``batch_size`` rows). The answer of an
approval is the exception: it is written by the payment's own transaction (``gateway.store.keys``), so a
crash never loses it.

No row may stop the log (spec/operations.md "Records kept"):
- a row is made writable when it is queued: text without NUL, lone surrogates or other controls (shown
  escaped), every value cut to a bound, ``fields`` serialised once — a row that cannot even be serialised
  is replaced by a quarantine row saying so;
- a batch the database refuses for its content is split until the refused rows are isolated; each of those
  is written as a quarantine row (what is known to be safe: time, channel, direction, the error), or,
  failing that, dropped — counted either way, and the rows behind it go on;
- a batch that fails because the database is away goes back to the head of the queue and is retried with
  back-off. The queue is bounded: beyond ``max_queue`` new rows are dropped from the database log and
  counted (each was already emitted as a structlog event, so the process log still holds it).
The backlog, the quarantined and dropped counts and the last error are shown by ``/readyz`` and ``/metrics``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from gateway import metrics
from gateway.domain.log_row import COLUMNS, LogRow
from gateway.store.db import UNAVAILABLE, watchdog

log = structlog.get_logger("gateway.message_log")

# Failures that say nothing about the rows: the database is away or busy, or (a role or a table changed
# under it) not yet ready for them; keep them and retry.
_TRANSIENT = (*UNAVAILABLE, asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError)


class MessageLog:
    def __init__(self, pool: asyncpg.Pool, *, max_queue: int = 100_000, batch_size: int = 2000,
                 flush_interval_s: float = 0.05, acquire_timeout_s: float = 2.0, write_timeout_s: float = 10.0):
        self.pool = pool
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.acquire_timeout_s = acquire_timeout_s
        self.write_timeout_s = write_timeout_s
        self._rows: list[tuple] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.dropped = 0
        self.quarantined = 0
        self.written = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-log")

    @property
    def backlog(self) -> int:
        return len(self._rows)

    def status(self) -> dict[str, Any]:
        return {"backlog": self.backlog, "written": self.written, "quarantined": self.quarantined,
                "dropped": self.dropped, "last_error": self.last_error,
                "running": self._task is not None and not self._task.done()}

    def add(self, row: LogRow) -> None:
        if len(self._rows) >= self.max_queue:
            self._drop(1, "queue full")
            return
        try:
            record = row.record()
        except Exception as exc:  # noqa: BLE001 - a row that cannot be serialised is quarantined, not raised
            record = row.quarantined(type(exc).__name__)
            self._count_quarantined(1, type(exc).__name__)
        self._rows.append(record)
        metrics.MESSAGE_LOG_BACKLOG.set(len(self._rows))
        if len(self._rows) >= self.batch_size:
            self._wakeup.set()

    async def flush(self) -> None:
        """Write what is queued; raises (rows kept) only when the database is away."""
        while self._rows:
            batch = self._rows[: self.batch_size]
            try:
                async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn:
                    await self._write(conn, batch)
            except _TRANSIENT as exc:
                self.last_error = type(exc).__name__
                log.warning("message log flush failed; will retry", error=repr(exc), queued=len(self._rows))
                raise
            del self._rows[: len(batch)]
            metrics.MESSAGE_LOG_BACKLOG.set(len(self._rows))

    async def _write(self, conn: asyncpg.Connection, batch: list[tuple]) -> None:
        """COPY ``batch``; if the database refuses its content, isolate the refused rows by halving."""
        try:
            await self._copy(conn, batch)
            self.written += len(batch)
            metrics.MESSAGE_LOG_ROWS.labels("written").inc(len(batch))
            return
        except _TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - the content was refused: find the row(s) responsible
            reason = type(exc).__name__
            if len(batch) > 1:
                half = len(batch) // 2
                await self._write(conn, batch[:half])
                await self._write(conn, batch[half:])
                return
        # One row the database refuses: keep what is safe of it, else drop it; either way, counted.
        log.error("message log row refused by the database; quarantined", error=reason)
        try:
            await self._copy(conn, [_quarantine_record(batch[0], reason)])
            self._count_quarantined(1, reason)
        except _TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001
            self._drop(1, f"quarantine refused: {type(exc).__name__}")

    async def _copy(self, conn: asyncpg.Connection, records: list[tuple]) -> None:
        # A COPY to a connection that died silently (a partition, a half-open socket) must fail, not wait for
        # ever: the rows behind it depend on it. Each statement has its own deadline.
        with watchdog(conn, self.write_timeout_s):
            await conn.copy_records_to_table("message_log", columns=COLUMNS, records=records)

    def _count_quarantined(self, n: int, reason: str) -> None:
        self.quarantined += n
        self.last_error = reason
        metrics.MESSAGE_LOG_ROWS.labels("quarantined").inc(n)

    def _drop(self, n: int, reason: str) -> None:
        self.dropped += n
        self.last_error = reason
        metrics.MESSAGE_LOG_ROWS.labels("dropped").inc(n)
        metrics.MESSAGE_LOG_DROPPED.set(self.dropped)
        if self.dropped % 1000 == 1:
            log.error("message log rows dropped from the database log", dropped=self.dropped, reason=reason)

    async def _run(self) -> None:
        backoff = self.flush_interval_s
        while not self._closing:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=backoff)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.flush()
                backoff = self.flush_interval_s
            except Exception as exc:  # noqa: BLE001 - the writer never dies; it waits and retries
                if not isinstance(exc, _TRANSIENT):
                    log.exception("message log writer failure; will retry")
                    self.last_error = type(exc).__name__
                backoff = min(backoff * 2, 5.0)

    async def close(self, timeout_s: float = 5.0) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=timeout_s)
        try:
            await asyncio.wait_for(self.flush(), timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001
            log.error("message log rows lost at shutdown", queued=len(self._rows), error=repr(exc))


def _quarantine_record(record: tuple, reason: str) -> tuple:
    """A quarantine row from a queued record: its time, channel and direction, nothing else of it."""
    values = dict(zip(COLUMNS, record))
    return LogRow(logged_at=values["logged_at"], channel=values["channel"], direction=values["direction"]
                  ).quarantined(reason)
