"""Retention purges (gateway/store/retention.py, migration 0008) against real PostgreSQL, run as the
runtime role: what is older than its limit goes, what is younger or still used stays, and the runtime role
cannot delete any of it by itself."""
from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.store import retention
from gateway.store.db import create_pool

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 23)


@pytest.fixture
async def runtime(db_url, config):
    pool = await create_pool(config.database, db_url)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == "gateway_runtime"
            yield conn
    finally:
        await pool.close()


async def add_keys(db, age: str, n: int = 1, prefix: str = "k") -> None:
    await db.execute(
        "INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer, created_at)"
        " SELECT 'iso', '110', $1 || i, '\\x00', 'pbb-payment', '{}', now() - $2::text::interval"
        " FROM generate_series(1, $3) AS i", f"{prefix}-{age}-", age, n)


async def key_names(db) -> list[str]:
    rows = await db.fetch("SELECT key FROM message_keys ORDER BY key")
    return [r["key"] for r in rows]


async def test_message_keys_are_kept_40_days(runtime, db):
    await add_keys(db, "41 days", 3)
    await add_keys(db, "39 days")
    await add_keys(db, "0 days")
    assert str(await _refused(runtime, "DELETE FROM message_keys")) == "permission denied for table message_keys"
    assert await retention.purge_message_keys(runtime, batch_rows=2) == 3
    assert await key_names(db) == ["k-0 days-1", "k-39 days-1"]
    assert await retention.purge_message_keys(runtime) == 0


async def test_a_purge_deletes_one_bounded_batch_per_call(runtime, db):
    await add_keys(db, "50 days", 10_001)
    # The batch is capped by the schema, whatever the caller asks for.
    assert await runtime.fetchval("SELECT gw_purge_message_keys(1000000)") == 10_000
    assert await runtime.fetchval("SELECT gw_purge_message_keys(1000000)") == 1
    assert await runtime.fetchval("SELECT gw_purge_message_keys(0)") == 0
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 0


async def test_a_purge_needs_its_own_transactions(runtime):
    async with runtime.transaction():
        with pytest.raises(RuntimeError, match="each batch as its own transaction"):
            await retention.purge_message_keys(runtime)


async def add_quote(db, bill_id: int, expires: str) -> int:
    """A quote of 15 minutes that expires(d) at now() + ``expires``."""
    return await db.fetchval(
        "INSERT INTO quotes (bill_id, bank_code, principal, penalty, total, created_at, expires_at)"
        " VALUES ($1, '110', 150000, 4500, 154500, now() + $2::text::interval - interval '15 minutes',"
        " now() + $2::text::interval) RETURNING id", bill_id, expires)


async def test_quotes_used_by_a_payment_are_kept(runtime, db):
    bill_id = await add_pbb(db)
    used = await add_quote(db, bill_id, "-3 days")
    old = [await add_quote(db, bill_id, "-2 days"), await add_quote(db, bill_id, "-2 days"),
           await add_quote(db, bill_id, "-25 hours")]
    recent = await add_quote(db, bill_id, "-23 hours")
    live = await add_quote(db, bill_id, "10 minutes")
    await db.execute("INSERT INTO business_dates (business_date) VALUES ($1)", DAY)
    await db.execute(
        "INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, principal, penalty, total,"
        " quote_id, business_date, paid_at) VALUES ($1, $2, 'PBB', '110', 'atm', 'iso', 'NTB1', 150000, 4500,"
        " 154500, $3, $4, now())", make_ntpd(DAY, Tax.PBB, 1), bill_id, used, DAY)
    assert str(await _refused(runtime, "DELETE FROM quotes WHERE id = $1", old[0])) == \
        "permission denied for table quotes"
    # One quote per batch: the used quote, first in expiry order, is passed over and the walk goes on.
    assert await retention.purge_quotes(runtime, batch_rows=1) == 3
    remaining = [r["id"] for r in await db.fetch("SELECT id FROM quotes ORDER BY id")]
    assert remaining == [used, recent, live]
    assert await retention.purge_quotes(runtime) == 0


async def test_nonces_sessions_and_failed_signins(runtime, db):
    await db.execute("INSERT INTO http_nonces (bank_code, nonce, seen_at) VALUES"
                     " ('110', 'old', now() - interval '16 minutes'), ('110', 'young', now() - interval '14 minutes')")
    user_id = await db.fetchval("INSERT INTO staff_users (username, role, password_hash)"
                                " VALUES ('siti', 'support', 'scrypt$x') RETURNING id")
    sessions = {  # name: (expires_at, revoked_at) relative to now()
        "expired 2 days": ("-2 days", None), "revoked 2 days": ("10 hours", "-2 days"),
        "expired 1 hour": ("-1 hour", None), "revoked 1 hour": ("10 hours", "-1 hour"), "live": ("10 hours", None),
    }
    for i, (expires, revoked) in enumerate(sessions.values()):
        await db.execute(
            "INSERT INTO staff_sessions (session_hash, user_id, csrf_hash, created_at, expires_at, revoked_at)"
            " VALUES ($1, $2, $1, now() + $3::text::interval - interval '12 hours', now() + $3::text::interval,"
            " now() + $4::text::interval)", bytes([i]) * 32, user_id, expires, revoked)
    await db.execute("INSERT INTO signin_failures (at, username, source) VALUES"
                     " (now() - interval '25 hours', 'siti', '10.0.0.9'), (now() - interval '23 hours', 'siti', '')")
    for table in ("staff_sessions", "signin_failures"):
        assert str(await _refused(runtime, f"DELETE FROM {table}")) == f"permission denied for table {table}"

    assert await retention.purge_http_nonces(runtime) == 1
    assert await retention.purge_staff_sessions(runtime) == 2
    assert await retention.purge_signin_failures(runtime) == 1
    assert [r["nonce"] for r in await db.fetch("SELECT nonce FROM http_nonces")] == ["young"]
    left = {bytes(r["session_hash"])[0] for r in await db.fetch("SELECT session_hash FROM staff_sessions")}
    assert sorted(list(sessions)[i] for i in left) == ["expired 1 hour", "live", "revoked 1 hour"]
    assert await db.fetchval("SELECT count(*) FROM signin_failures WHERE at > now() - interval '1 day'") == 1
    assert await db.fetchval("SELECT count(*) FROM signin_failures") == 1


async def partitions(db) -> set[str]:
    rows = await db.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                          " WHERE i.inhparent = 'message_log'::regclass AND c.relname <> 'message_log_default'")
    return {r["relname"] for r in rows}


async def test_message_log_months_older_than_400_days_are_dropped(runtime, db):
    old = await db.fetchval("SELECT 'message_log_' || to_char(current_date - 500, 'YYYYMM')")
    kept = await db.fetchval("SELECT 'message_log_' || to_char(current_date - 200, 'YYYYMM')")
    await db.execute("SELECT gw_message_log_partitions(current_date - 500, 1), "
                     "gw_message_log_partitions(current_date - 200, 1)")
    before = await partitions(db)
    assert {old, kept} <= before
    # Whatever the caller passes, no month younger than 400 days goes.
    assert await runtime.fetchval("SELECT gw_message_log_retention(now() + interval '10 years', 0)") == 1
    assert await partitions(db) == before - {old}
    # Partitions ahead: at most 24 months per call (on the owner's connection: two dozen partitions take
    # longer than the pool's statement timeout allows).
    created = await db.fetchval("SELECT gw_message_log_partitions(current_date, 1000)")
    assert len(await partitions(db)) == len(before) - 1 + created
    last, beyond = await db.fetchrow(
        "SELECT to_regclass('message_log_' || to_char(current_date + interval '23 months', 'YYYYMM')) IS NOT NULL,"
        " to_regclass('message_log_' || to_char(current_date + interval '24 months', 'YYYYMM')) IS NOT NULL")
    assert (last, beyond) == (True, False)


async def test_one_run_purges_every_table(runtime, db):
    await add_keys(db, "41 days", 2)
    await add_keys(db, "1 day")
    await db.execute("INSERT INTO http_nonces (bank_code, nonce, seen_at)"
                     " VALUES ('110', 'n', now() - interval '1 hour')")
    await db.execute("SELECT gw_message_log_partitions(current_date - 450, 1)")
    # Housekeeping's round on the runtime pool: partitions ahead, then every purge.
    assert await retention.create_message_log_partitions(runtime, 3) >= 0
    ahead = await db.fetchval(
        "SELECT count(*) FROM generate_series(0, 2) AS m WHERE to_regclass("
        "'message_log_' || to_char(current_date + make_interval(months => m), 'YYYYMM')) IS NOT NULL")
    assert ahead == 3
    purged = await retention.run(runtime)
    assert purged.counts() == {"message_keys": 2, "quotes": 0, "http_nonces": 1, "staff_sessions": 0,
                               "signin_failures": 0, "message_log_months": 1}
    assert purged.total() == 4
    assert await retention.run(runtime) == retention.Purged()


async def test_only_the_runtime_role_may_run_the_purges(db, db_url):
    name = f"gw_other_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE ROLE {name} LOGIN")
    try:
        conn = await asyncpg.connect(db_url, user=name)
        try:
            for call in ("gw_purge_message_keys(1)", "gw_purge_quotes(1, NULL, NULL)", "gw_purge_staff_sessions(1)",
                         "gw_message_log_retention(now(), 400)"):
                function = call.split("(")[0]
                assert str(await _refused(conn, f"SELECT {call}")) == f"permission denied for function {function}"
        finally:
            await conn.close()
    finally:
        await db.execute(f"DROP ROLE {name}")


async def _refused(conn, statement: str, *args) -> asyncpg.PostgresError:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as info:
        await conn.execute(statement, *args)
    return info.value
