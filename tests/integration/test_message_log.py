"""The message-log writer against a real PostgreSQL: no row stops it (spec/operations.md "Records kept")."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import asyncpg
import pytest

from gateway.config import DatabaseConfig
from gateway.domain.log_row import LogRow
from gateway.store.db import create_pool
from gateway.store.message_log import MessageLog

pytestmark = pytest.mark.integration


def row(i: int, **kw) -> LogRow:
    return LogRow(logged_at=datetime.now(UTC), channel="http", direction="in", connection_id=f"c-{i}", **kw)


@pytest.fixture
async def runtime_pool(db_url):
    """The gateway's own pool: the runtime role, the short timeouts."""
    pool = await create_pool(DatabaseConfig(pool_min=1, pool_max=4), db_url)
    yield pool
    await pool.close()


async def test_hostile_text_is_written_escaped_and_bounded(runtime_pool, db):
    log = MessageLog(runtime_pool)
    log.add(row(1, detail="/v1/payments/\x00", bank_code="1\x00\ud800", message_key="k\udcff",
                fields={"path": "/v1/\x00", "\x00key": "\ud83d", "nested": {"deep": ["\x07", 1.5, float("nan")]}}))
    log.add(row(2, detail="x" * 100_000, peer="p" * 10_000))
    await log.flush()
    rows = await db.fetch("SELECT connection_id, detail, bank_code, message_key, fields, peer FROM message_log"
                          " ORDER BY connection_id")
    assert [r["connection_id"] for r in rows] == ["c-1", "c-2"]
    first, second = rows
    assert first["detail"] == "/v1/payments/\\x00"
    assert first["bank_code"] == "1\\x00\\ud800" and first["message_key"] == "k\\udcff"
    assert json.loads(first["fields"]) == {"path": "/v1/\\x00", "\\x00key": "\\ud83d",
                                           "nested": {"deep": ["\\x07", 1.5, "nan"]}}
    assert len(second["detail"]) == 2000 and second["detail"].endswith("…")
    assert len(second["peer"]) == 200
    assert (log.written, log.quarantined, log.dropped, log.backlog) == (2, 0, 0, 0)


async def test_a_refused_row_is_quarantined_and_the_rows_behind_it_are_written(runtime_pool, db):
    """A value the database refuses (here: a bank code over the column's check added for the test) must
    not hold back the batch: the batch is split, the bad row is quarantined and counted."""
    await db.execute("ALTER TABLE message_log ADD CONSTRAINT test_no_evil CHECK (bank_code IS DISTINCT FROM 'EVIL')")
    log = MessageLog(runtime_pool, batch_size=100)
    for i in range(50):
        log.add(row(i, bank_code="EVIL" if i in (7, 31) else "110"))
    await log.flush()
    counts = dict(await db.fetch("SELECT event, count(*) FROM message_log GROUP BY event"))
    assert counts == {"message": 48, "quarantined": 2}
    quarantined = await db.fetch("SELECT channel, direction, bank_code, connection_id, detail FROM message_log"
                                 " WHERE event = 'quarantined'")
    assert [tuple(r) for r in quarantined] == [
        ("http", "in", None, None, "row could not be written: CheckViolationError")] * 2
    assert (log.written, log.quarantined, log.dropped, log.backlog) == (48, 2, 0, 0)
    assert log.status()["last_error"] == "CheckViolationError"


async def test_rows_wait_while_the_database_is_away_and_are_written_when_it_returns(db_url, db):
    pool = await create_pool(DatabaseConfig(pool_min=1, pool_max=2), db_url)
    log = MessageLog(pool, flush_interval_s=0.01)
    try:
        # The database "goes away" for the writer: its role loses the right to insert.
        await db.execute("REVOKE INSERT ON message_log FROM gateway_runtime")
        log.start()
        for i in range(10):
            log.add(row(i))
        for _ in range(200):
            if log.last_error is not None:
                break
            await asyncio.sleep(0.01)
        assert log.last_error == "InsufficientPrivilegeError" and log.backlog == 10
        assert await db.fetchval("SELECT count(*) FROM message_log") == 0
        await db.execute("GRANT INSERT ON message_log TO gateway_runtime")
        for _ in range(600):
            if log.backlog == 0:
                break
            await asyncio.sleep(0.01)
        assert await db.fetchval("SELECT count(*) FROM message_log") == 10
        assert (log.written, log.quarantined, log.dropped) == (10, 0, 0)
    finally:
        await log.close()
        await pool.close()


async def test_a_full_queue_drops_and_counts(runtime_pool, db):
    log = MessageLog(runtime_pool, max_queue=5)
    for i in range(8):
        log.add(row(i))
    assert (log.backlog, log.dropped) == (5, 3)
    await log.flush()
    assert await db.fetchval("SELECT count(*) FROM message_log") == 5


async def test_a_row_that_cannot_be_serialised_is_quarantined_at_once(runtime_pool, db):
    log = MessageLog(runtime_pool)

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    log.add(row(1, fields={"x": Unprintable()}))
    log.add(row(2))
    await log.flush()
    events = [tuple(r) for r in await db.fetch("SELECT event, connection_id FROM message_log ORDER BY id")]
    assert events == [("quarantined", None), ("message", "c-2")]
    assert log.quarantined == 1


async def test_the_writer_never_hangs_on_a_silent_connection(db_url, db):
    """A batch written to a connection that stops answering fails after the write timeout (the connection is
    terminated), the rows stay queued, and the next attempt on a fresh connection writes them."""
    # Long server-side timeouts, so that only the writer's own deadline can end the wait.
    pool = await create_pool(DatabaseConfig(pool_min=1, pool_max=2, statement_timeout_ms=60_000,
                                            lock_timeout_ms=60_000), db_url)
    log = MessageLog(pool, write_timeout_s=0.3)
    # Hold a lock the COPY needs: the writer's statement waits (like a silent server) until its deadline.
    async with db.transaction():
        await db.execute("LOCK TABLE message_log IN ACCESS EXCLUSIVE MODE")
        log.add(row(1))
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await log.flush()
        assert log.backlog == 1
    await log.flush()  # on a fresh connection: the terminated one was discarded by the pool
    assert await db.fetchval("SELECT count(*) FROM message_log") == 1
    await pool.close()
