"""Retention jobs (spec/operations.md "Records kept"): the calls housekeeping makes on the runtime pool.

Each purge is a function of the schema (migration 0008) that runs as the owner and fixes its own age
limit, so the runtime role can run a purge but never shorten what is kept:

- message keys: 40 days (the contract: at least 35);
- quotes: expired more than a day ago and used by no payment;
- nonces of signed bank requests: 15 minutes;
- staff sessions: expired or revoked more than a day ago;
- failed staff sign-ins: a day (they are counted over minutes);
- message-log months: older than 400 days (partitions dropped whole).

A function call deletes one bounded batch (``BATCH_ROWS``); every call here is its own transaction, so a
purge never holds many row locks nor holds them long. A run stops after ``MAX_BATCHES`` per table and the
next run goes on from there.
"""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

log = structlog.get_logger("gateway.retention")

# Rows per statement (the schema caps it at 10,000 too). Small enough to finish well inside the pool's
# statement timeout.
BATCH_ROWS = 5_000
# The schema's own cap on a batch (gw_retention_batch).
SCHEMA_BATCH_CAP = 10_000
# Batches per table per run: a backlog is worked off over several runs, never in one long loop.
MAX_BATCHES = 100
# The contract keeps the message log 400 days; the schema refuses anything shorter.
MESSAGE_LOG_DAYS = 400


@dataclass(frozen=True)
class Purged:
    message_keys: int = 0
    quotes: int = 0
    http_nonces: int = 0
    staff_sessions: int = 0
    signin_failures: int = 0
    message_log_months: int = 0

    def counts(self) -> dict[str, int]:
        return {name: value for name, value in vars(self).items()}

    def total(self) -> int:
        return sum(vars(self).values())


def _autocommit(conn: asyncpg.Connection) -> None:
    # Inside a caller's transaction the batches would keep every lock until its end.
    if conn.is_in_transaction():
        raise RuntimeError("retention runs each batch as its own transaction, not inside the caller's")


async def _batched(conn: asyncpg.Connection, function: str, batch_rows: int, max_batches: int) -> int:
    _autocommit(conn)
    batch_rows = min(batch_rows, SCHEMA_BATCH_CAP)
    total = 0
    for _ in range(max_batches):
        n = await conn.fetchval(f"SELECT {function}($1)", batch_rows)
        total += n
        if n < batch_rows:
            break
    return total


async def purge_message_keys(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS,
                             max_batches: int = MAX_BATCHES) -> int:
    return await _batched(conn, "gw_purge_message_keys", batch_rows, max_batches)


async def purge_http_nonces(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS,
                            max_batches: int = MAX_BATCHES) -> int:
    return await _batched(conn, "gw_purge_http_nonces", batch_rows, max_batches)


async def purge_staff_sessions(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS,
                               max_batches: int = MAX_BATCHES) -> int:
    return await _batched(conn, "gw_purge_staff_sessions", batch_rows, max_batches)


async def purge_signin_failures(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS,
                                max_batches: int = MAX_BATCHES) -> int:
    return await _batched(conn, "gw_purge_signin_failures", batch_rows, max_batches)


async def purge_quotes(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS,
                       max_batches: int = MAX_BATCHES) -> int:
    """Quotes walk in (expires_at, id) order from where the last batch stopped: the quotes kept for their
    payments are looked at once per run."""
    _autocommit(conn)
    total, after_expires, after_id = 0, None, None
    for _ in range(max_batches):
        row = await conn.fetchrow("SELECT purged, last_expires, last_id FROM gw_purge_quotes($1, $2, $3)",
                                  batch_rows, after_expires, after_id)
        total += row["purged"]
        if row["last_id"] is None:
            break
        after_expires, after_id = row["last_expires"], row["last_id"]
    return total


async def create_message_log_partitions(conn: asyncpg.Connection, months_ahead: int) -> int:
    """Month partitions from this month on (idempotent); the number created."""
    return await conn.fetchval("SELECT gw_message_log_partitions(current_date, $1)", months_ahead)


async def drop_old_message_log_months(conn: asyncpg.Connection, keep_days: int = MESSAGE_LOG_DAYS) -> int:
    return await conn.fetchval("SELECT gw_message_log_retention(now(), $1)", keep_days)


async def run(conn: asyncpg.Connection, *, batch_rows: int = BATCH_ROWS, max_batches: int = MAX_BATCHES,
              message_log_days: int = MESSAGE_LOG_DAYS) -> Purged:
    """Every retention job once, in turn. A job that fails is logged and counted as nothing purged; the
    others still run (one stuck table must not keep the rest from being purged)."""
    options = dict(batch_rows=batch_rows, max_batches=max_batches)
    jobs = {
        "message_keys": lambda: purge_message_keys(conn, **options),
        "quotes": lambda: purge_quotes(conn, **options),
        "http_nonces": lambda: purge_http_nonces(conn, **options),
        "staff_sessions": lambda: purge_staff_sessions(conn, **options),
        "signin_failures": lambda: purge_signin_failures(conn, **options),
        "message_log_months": lambda: drop_old_message_log_months(conn, message_log_days),
    }
    counts = {}
    for name, job in jobs.items():
        try:
            counts[name] = await job()
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if conn.is_closed():
                raise
            log.warning("retention job failed", job=name, error=repr(exc))
            counts[name] = 0
    return Purged(**counts)
