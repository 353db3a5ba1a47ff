"""The periodic upkeep of a serving gateway: the message log's partitions ahead, then the retention purges."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date

import asyncpg
import structlog

from gateway import metrics
from gateway.config import DatabaseConfig
from gateway.store import retention, settlements

log = structlog.get_logger("gateway")

# Message-log partitions are created this many months ahead, at start and every round.
PARTITION_MONTHS_AHEAD = 3
# The message log is kept 400 days (spec/operations.md "Records kept"); the other ages are fixed by the
# schema's purge functions (gateway/store/retention.py).
RETENTION_DAYS = 400


async def housekeeping(pool: asyncpg.Pool, settings: DatabaseConfig,
                       business_date: Callable[[], date] | None = None) -> None:
    """Every ``housekeeping_interval_s``, until cancelled; each purge batch is its own transaction. A failed
    round is logged and tried again at the next. With ``business_date`` (today's), the count of earlier dates
    still not closed is published for the operators' alerts (gateway_business_dates_unclosed)."""
    while True:
        try:
            async with pool.acquire(timeout=settings.housekeeping_acquire_timeout_ms / 1000) as conn:
                await retention.create_message_log_partitions(conn, PARTITION_MONTHS_AHEAD)
                if business_date is not None:
                    metrics.UNCLOSED_DATES.set(await settlements.unclosed_before(conn, business_date()))
                purged = await retention.run(conn, message_log_days=RETENTION_DAYS)
            if purged.total():
                log.info("retention purged", **purged.counts())
        except Exception as exc:  # noqa: BLE001 - retried on the next round
            log.warning("housekeeping failed", error=repr(exc))
        await asyncio.sleep(settings.housekeeping_interval_s)
