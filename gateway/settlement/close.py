"""Closing a business date (spec/operations.md "Settlement (closing a business date)").

1. refused while the date's cut-off has not passed;
2. the date is marked 'closing' under FOR UPDATE on its business_dates row: the lock waits for every
   payment/reversal transaction holding FOR KEY SHARE on it, and after the commit new ones see 'closing'
   (RC 90);
3. money conservation is checked (invariants.check_conservation); a mismatch puts the date back to
   'open' and raises SettlementError with the report;
4. the per bank and tax totals are frozen into business_dates.totals, the date becomes 'closed';
5. closing a closed date returns the frozen totals again.
"""
from __future__ import annotations

import contextlib
import datetime
import json
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

import asyncpg

from gateway.domain.business_day import cutoff_moment, cutoff_passed
from gateway.settlement.errors import SettlementError
from gateway.settlement.invariants import Totals, check_conservation, totals

__all__ = ["CloseResult", "SettlementError", "close_business_date", "frozen_totals", "totals_from_json"]


@dataclass(frozen=True)
class CloseResult:
    business_date: datetime.date
    closed_at: datetime.datetime
    closed_by: str
    totals: tuple[Totals, ...]
    already_closed: bool = False


def normalized(items) -> tuple[Totals, ...]:
    """Totals with plain ints (PostgreSQL's sum(bigint) is numeric, read as Decimal)."""
    return tuple(Totals(t.bank, t.tax, *(int(getattr(t, f)) for f in (
        "payments_count", "payments_amount", "principal", "penalty", "reversals_count", "reversals_amount")))
        for t in items)


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
    row = await conn.fetchrow("SELECT state, totals, closed_at, closed_by FROM business_dates"
                              " WHERE business_date = $1", day)
    if row is None:
        return None, None, None, None
    frozen = totals_from_json(row["totals"]) if row["totals"] is not None else None
    return row["state"], frozen, row["closed_at"], row["closed_by"]


def _closed(row, day: datetime.date) -> CloseResult:
    return CloseResult(day, row["closed_at"], row["closed_by"], totals_from_json(row["totals"]), already_closed=True)


async def close_business_date(pool_or_conn, day: datetime.date, *, now_utc: datetime.datetime, tz: ZoneInfo,
                              cutoff: datetime.time, operator: str) -> CloseResult:
    if not cutoff_passed(day, now_utc, tz, cutoff):
        ends = cutoff_moment(day, tz, cutoff).astimezone(tz)
        raise SettlementError(f"business date {day.isoformat()} cannot be closed before its cut-off "
                              f"({ends.strftime('%Y-%m-%d %H:%M %Z')})")
    if not operator:
        raise SettlementError("an operator name is required to close a business date")
    async with _connection(pool_or_conn) as conn:
        # Step 2: one short transaction; FOR UPDATE waits for the payments holding FOR KEY SHARE.
        async with conn.transaction():
            await conn.execute("INSERT INTO business_dates (business_date) VALUES ($1) ON CONFLICT DO NOTHING", day)
            row = await conn.fetchrow("SELECT state, totals, closed_at, closed_by FROM business_dates"
                                      " WHERE business_date = $1 FOR UPDATE", day)
            if row["state"] == "closed":
                return _closed(row, day)
            # 'closing' left by an interrupted close is taken over: the check below runs again.
            await conn.execute("UPDATE business_dates SET state = 'closing', closing_at = $2"
                               " WHERE business_date = $1", day, now_utc)
        # Step 3: nothing for the date can commit now, so the check sees the final state.
        try:
            problems = await check_conservation(conn, day)
        except BaseException:
            await _reopen(conn, day)
            raise
        if problems:
            await _reopen(conn, day)
            report = "; ".join(str(p) for p in problems)
            raise SettlementError(f"business date {day.isoformat()} not closed, money is not conserved "
                                  f"({len(problems)} mismatch(es)): {report}")
        # Step 4: freeze and close.
        async with conn.transaction():
            state = await conn.fetchval("SELECT state FROM business_dates WHERE business_date = $1 FOR UPDATE", day)
            if state != "closing":  # another close finished (or reopened) meanwhile
                row = await conn.fetchrow("SELECT state, totals, closed_at, closed_by FROM business_dates"
                                          " WHERE business_date = $1", day)
                if row["state"] == "closed":
                    return _closed(row, day)
                raise SettlementError(f"business date {day.isoformat()} was reopened during the close; try again")
            frozen = normalized(await totals(conn, day))
            await conn.execute(
                "UPDATE business_dates SET state = 'closed', closed_at = $2, closed_by = $3, totals = $4::jsonb"
                " WHERE business_date = $1", day, now_utc, operator, totals_to_json(frozen))
        return CloseResult(day, now_utc, operator, frozen)


async def _reopen(conn: asyncpg.Connection, day: datetime.date) -> None:
    await conn.execute("UPDATE business_dates SET state = 'open', closing_at = NULL"
                       " WHERE business_date = $1 AND state = 'closing'", day)
