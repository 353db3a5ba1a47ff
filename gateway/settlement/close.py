"""Closing a business date (spec/operations.md "Settlement (closing a business date)").

1. refused while the date's cut-off has not passed;
2. the date is marked 'closing' under FOR UPDATE on its business_dates row: the lock waits for every
   payment/reversal transaction holding FOR KEY SHARE on it, and after the commit new ones see 'closing'
   (RC 90);
3. money conservation is checked (invariants.check_conservation); a mismatch puts the date back to
   'open' and raises SettlementError with the report;
4. the per bank and tax totals are frozen into business_dates.totals, the date becomes 'closed';
5. closing a closed date returns the frozen totals again.

A close that fails after step 2 for any reason (a mismatch, a database error, the connection lost, the
task cancelled) puts the date back to 'open' before the error propagates: on the same connection when it
is still usable, else on a fresh one (from the pool, or ``reconnect`` for a single connection). A date
left 'closing' by a process that died in between is taken over by the next close of that date, which
marks it closing again and runs steps 3 and 4.

Closing is long staff work, also when it runs on the request pool (the HTTP route), whose connections
carry the short statement timeout of bank requests: every transaction here sets its own
``statement_timeout_ms`` (the configuration's close_statement_timeout_ms) with SET LOCAL, which ends
with the transaction and so never leaks into the pool.
"""
from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, fields
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from gateway.config import DatabaseConfig
from gateway.domain.business_day import cutoff_moment, cutoff_passed
from gateway.settlement.errors import SettlementError
from gateway.settlement.invariants import Totals, check_conservation, totals
from gateway.store import settlements as store

__all__ = ["CloseResult", "SettlementError", "close_business_date", "frozen_totals", "totals_from_json"]

log = structlog.get_logger("gateway.settlement")

CLOSE_STATEMENT_TIMEOUT_MS = DatabaseConfig.close_statement_timeout_ms

Reconnect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


@dataclass(frozen=True)
class CloseResult:
    business_date: datetime.date
    closed_at: datetime.datetime
    closed_by: str
    totals: tuple[Totals, ...]
    already_closed: bool = False


def normalized(items) -> tuple[Totals, ...]:
    """Totals with plain ints (PostgreSQL's sum(bigint) is numeric, read as Decimal): every field after bank
    and tax is a number."""
    return tuple(Totals(t.bank, t.tax, *(int(getattr(t, f.name)) for f in fields(Totals)[2:])) for t in items)


def totals_to_json(items) -> str:
    return json.dumps([asdict(t) for t in items], separators=(",", ":"))


def totals_from_json(value) -> tuple[Totals, ...]:
    data = json.loads(value) if isinstance(value, str) else value
    return tuple(Totals(**item) for item in data or [])


@contextlib.asynccontextmanager
async def _connection(pool_or_conn):
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            yield conn
    else:
        yield pool_or_conn


async def frozen_totals(conn: asyncpg.Connection, day: datetime.date):
    """(state, frozen totals or None, closed_at, closed_by) of a date; state None when the row is missing."""
    row = await store.business_date(conn, day)
    if row is None:
        return None, None, None, None
    frozen = totals_from_json(row["totals"]) if row["totals"] is not None else None
    return row["state"], frozen, row["closed_at"], row["closed_by"]


def _closed(row, day: datetime.date) -> CloseResult:
    return CloseResult(day, row["closed_at"], row["closed_by"], totals_from_json(row["totals"]), already_closed=True)


async def close_business_date(pool_or_conn, day: datetime.date, *, now_utc: datetime.datetime, tz: ZoneInfo,
                              cutoff: datetime.time, operator: str,
                              statement_timeout_ms: int = CLOSE_STATEMENT_TIMEOUT_MS,
                              reconnect: Reconnect | None = None) -> CloseResult:
    """Close ``day`` (module docstring). ``pool_or_conn``: the request pool or one connection;
    ``reconnect``: a fresh connection (async context manager) for putting the date back to open when a
    single connection broke during the close (a pool needs none)."""
    if not cutoff_passed(day, now_utc, tz, cutoff):
        ends = cutoff_moment(day, tz, cutoff).astimezone(tz)
        raise SettlementError(f"business date {day.isoformat()} cannot be closed before its cut-off "
                              f"({ends.strftime('%Y-%m-%d %H:%M %Z')})")
    if not operator:
        raise SettlementError("an operator name is required to close a business date")
    limit_ms = _statement_timeout(statement_timeout_ms)
    async with _connection(pool_or_conn) as conn:
        # Step 2: one short transaction; FOR UPDATE waits for the payments holding FOR KEY SHARE.
        async with conn.transaction():
            await store.set_statement_timeout(conn, limit_ms)
            await store.add_business_date(conn, day)
            row = await store.lock_business_date(conn, day)
            assert row is not None, "the row was inserted by this transaction"
            if row["state"] == "closed":
                return _closed(row, day)
            # 'closing' left by an interrupted close is taken over: the check below runs again.
            await store.mark_closing(conn, day, now_utc)
        try:
            return await _check_and_freeze(conn, day, now_utc, operator, limit_ms)
        except BaseException:
            # Whatever stopped the close (a mismatch, a database error, cancellation), the date is not
            # left closing: new payments and reversals of it would get RC 90 until the next close.
            await _reopen_after_failure(conn, pool_or_conn, reconnect, day, limit_ms)
            raise


def _statement_timeout(statement_timeout_ms: int) -> int:
    """The statement timeout every transaction of the close sets, in milliseconds (checked up front)."""
    milliseconds = int(statement_timeout_ms)
    if milliseconds < 0:
        raise ValueError("statement_timeout_ms must not be negative")
    return milliseconds


async def _check_and_freeze(conn: asyncpg.Connection, day: datetime.date, now_utc: datetime.datetime,
                            operator: str, limit_ms: int) -> CloseResult:
    # Step 3: nothing for the date can commit now, so the check sees the final state. The check's own
    # transaction (repeatable read, read only) nests in this one, which carries the statement timeout.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await store.set_statement_timeout(conn, limit_ms)
        problems = await check_conservation(conn, day)
    if problems:
        report = "; ".join(str(p) for p in problems)
        raise SettlementError(f"business date {day.isoformat()} not closed, money is not conserved "
                              f"({len(problems)} mismatch(es)): {report}")
    # Step 4: freeze and close.
    async with conn.transaction():
        await store.set_statement_timeout(conn, limit_ms)
        state = await store.lock_business_date_state(conn, day)
        if state != "closing":  # another close finished (or reopened) meanwhile
            row = await store.business_date(conn, day)
            assert row is not None, "the date's row was there when this close began (rows are never deleted)"
            if row["state"] == "closed":
                return _closed(row, day)
            raise SettlementError(f"business date {day.isoformat()} was reopened during the close; try again")
        frozen = normalized(await totals(conn, day))
        await store.mark_closed(conn, day, now_utc, operator, totals_to_json(frozen))
    return CloseResult(day, now_utc, operator, frozen)


async def _reopen(conn: asyncpg.Connection, day: datetime.date, limit_ms: int) -> None:
    async with conn.transaction():
        await store.set_statement_timeout(conn, limit_ms)
        await store.reopen_closing(conn, day)


async def _reopen_after_failure(conn: asyncpg.Connection, pool_or_conn, reconnect: Reconnect | None,
                                day: datetime.date, limit_ms: int) -> None:
    """Put ``day`` back to open after a failed close; never raises (the close's own error matters)."""
    try:
        # A pool's connection that broke is detached from its proxy: asking it anything raises.
        if not conn.is_closed() and not conn.is_in_transaction():
            await _reopen(conn, day, limit_ms)
            return
    except Exception as exc:  # noqa: BLE001 - broken or busy (a cancelled statement): try a fresh one
        log.warning("close: reopening on the same connection failed", business_date=day.isoformat(),
                    error=repr(exc))
    if isinstance(pool_or_conn, asyncpg.Pool):
        fresh = pool_or_conn.acquire()
    elif reconnect is not None:
        fresh = reconnect()
    else:
        log.error("close: business date left closing (no connection to reopen it); the next close of the"
                  " date takes it over", business_date=day.isoformat())
        return
    try:
        async with fresh as other:
            await _reopen(other, day, limit_ms)
    except Exception as exc:  # noqa: BLE001 - the next close of the date takes it over
        log.error("close: business date left closing; the next close of the date takes it over",
                  business_date=day.isoformat(), error=repr(exc))
