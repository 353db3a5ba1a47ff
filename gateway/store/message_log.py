"""The message log writer: every message in and out, batched into PostgreSQL with COPY.

Writing two log rows per message synchronously would double the database work of a payment, so rows are
queued and flushed in batches (every ``flush_interval_s`` or ``batch_size`` rows). The queue is bounded:
when the database is away long enough to fill it, further rows are dropped from the database log and
counted — each was already emitted as a structlog event, so the process log still holds it. A payment's
own rows (payment, message key with its answer) never depend on this log.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("gateway.message_log")


@dataclass
class LogRow:
    logged_at: datetime
    channel: str
    direction: str
    event: str = "message"
    bank_code: str | None = None
    connection_id: str | None = None
    peer: str | None = None
    mti: str | None = None
    processing_code: str | None = None
    stan: str | None = None
    transmitted: str | None = None
    rrn: str | None = None
    response_code: str | None = None
    bill_id: str | None = None
    ntpd: str | None = None
    message_key: str | None = None
    elapsed_ms: float | None = None
    fields: dict[str, Any] | None = None
    detail: str | None = None

    def record(self) -> tuple:
        values = [getattr(self, f.name) for f in fields(self)]
        values[-2] = json.dumps(self.fields) if self.fields is not None else None
        return tuple(values)


COLUMNS = [f.name for f in fields(LogRow)]


class MessageLog:
    def __init__(self, pool: asyncpg.Pool, *, max_queue: int = 100_000, batch_size: int = 2000,
                 flush_interval_s: float = 0.05):
        self.pool = pool
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._rows: list[LogRow] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="message-log")

    def add(self, row: LogRow) -> None:
        if len(self._rows) >= self.max_queue:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("message log queue full; rows dropped from the database log", dropped=self.dropped)
            return
        self._rows.append(row)
        if len(self._rows) >= self.batch_size:
            self._wakeup.set()

    async def flush(self) -> None:
        while self._rows:
            batch, self._rows = self._rows[: self.batch_size], self._rows[self.batch_size:]
            try:
                async with self.pool.acquire(timeout=5) as conn:
                    await conn.copy_records_to_table("message_log", columns=COLUMNS,
                                                     records=[r.record() for r in batch])
                self.written += len(batch)
            except Exception as exc:  # noqa: BLE001 - keep the rows and retry later
                self._rows[:0] = batch
                log.warning("message log flush failed; will retry", error=repr(exc), queued=len(self._rows))
                raise

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
            except Exception:  # noqa: BLE001
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
