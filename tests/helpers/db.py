"""Probes of a test database: row counts, bill states, row locks held by the test, rows written in batches."""
from __future__ import annotations

import asyncio
import time

import asyncpg

# The tables whose rows a bank request may add (the default of ``counts``).
REQUEST_TABLES = ("payments", "active_payments", "reversals", "tombstones", "quotes", "message_keys",
                  "ledger_entries", "proofs", "http_nonces")


# A gateway writes an approved inquiry's quote and key behind its answer, within 50 ms (spec/domain.md
# "Quotes"): probes that count them read until the counts hold still for that long.
WRITE_BEHIND_S = 0.05


async def counts(db, tables=REQUEST_TABLES, timeout: float = 10.0) -> dict[str, int]:
    """Row count of each of `tables`, by table name, once two reads WRITE_BEHIND_S apart agree."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        current = {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in tables}
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current
        await asyncio.sleep(WRITE_BEHIND_S)


async def bill_status(db, tax: str, bill_key: str) -> str:
    return await db.fetchval("SELECT status FROM bills WHERE tax = $1 AND bill_key = $2", tax, bill_key)


async def lock_bill(conn: asyncpg.Connection, bill_id: int):
    """Start a transaction on `conn` holding the bill's row lock; returns the transaction (roll back to release)."""
    tx = conn.transaction()
    await tx.start()
    await conn.execute("SELECT id FROM bills WHERE id = $1 FOR UPDATE", bill_id)
    return tx


async def wait_until_blocked(db, count: int = 1, timeout: float = 5.0) -> None:
    """Until `count` gateway sessions wait on a lock (the payments are really in flight and blocked)."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'gateway' AND wait_event_type = 'Lock'")
        if waiting >= count:
            return
        assert time.monotonic() < deadline, f"{waiting} of {count} payments blocked on the bill's lock"
        await asyncio.sleep(0.02)


async def poll_rows(db, query: str, *args, count: int = 1, timeout: float = 10.0) -> list:
    """The rows of `query` once there are at least `count` (message-log rows are written in batches, an
    inquiry's quote and key behind its answer)."""
    deadline = time.monotonic() + timeout
    while len(rows := await db.fetch(query, *args)) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return rows
