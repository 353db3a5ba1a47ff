"""Settlement's SQL: the business date's row (closing, frozen totals), the money of a date (totals and the
conservation check's reads), the SISMIOP export's payments, and reading what reconciliation recorded."""
from __future__ import annotations

import datetime

import asyncpg

# ------------------------------------------------------------------------------ the business date's row

_DATE_ROW = "SELECT state, totals, closed_at, closed_by FROM business_dates WHERE business_date = $1"


async def set_statement_timeout(conn: asyncpg.Connection, statement_timeout_ms: int) -> None:
    """``statement_timeout`` for the rest of this transaction only (SET LOCAL: never leaks into a pool)."""
    await conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")


async def business_date(conn: asyncpg.Connection, day: datetime.date) -> asyncpg.Record | None:
    """(state, totals, closed_at, closed_by) of the date; None while the date has no row."""
    return await conn.fetchrow(_DATE_ROW, day)


async def add_business_date(conn: asyncpg.Connection, day: datetime.date) -> None:
    """The date's row, 'open', unless it exists."""
    await conn.execute("INSERT INTO business_dates (business_date) VALUES ($1) ON CONFLICT DO NOTHING", day)


async def lock_business_date(conn: asyncpg.Connection, day: datetime.date) -> asyncpg.Record | None:
    """The date's row as :func:`business_date`, locked FOR UPDATE: waits for every payment and reversal
    holding FOR KEY SHARE on it."""
    return await conn.fetchrow(_DATE_ROW + " FOR UPDATE", day)


async def lock_business_date_state(conn: asyncpg.Connection, day: datetime.date) -> str | None:
    """The date's state, its row locked FOR UPDATE; None while the date has no row."""
    state: str | None = await conn.fetchval(
        "SELECT state FROM business_dates WHERE business_date = $1 FOR UPDATE", day)
    return state


async def unclosed_before(conn: asyncpg.Connection, day: datetime.date) -> int:
    """How many business dates before ``day`` are not closed (the treasury's overdue closes)."""
    return await conn.fetchval(
        "SELECT count(*) FROM business_dates WHERE business_date < $1 AND state <> 'closed'", day)


async def mark_closing(conn: asyncpg.Connection, day: datetime.date, now_utc: datetime.datetime) -> None:
    await conn.execute("UPDATE business_dates SET state = 'closing', closing_at = $2 WHERE business_date = $1",
                       day, now_utc)


async def mark_closed(conn: asyncpg.Connection, day: datetime.date, now_utc: datetime.datetime, operator: str,
                      totals_json: str) -> None:
    await conn.execute(
        "UPDATE business_dates SET state = 'closed', closed_at = $2, closed_by = $3, totals = $4::jsonb"
        " WHERE business_date = $1", day, now_utc, operator, totals_json)


async def reopen_closing(conn: asyncpg.Connection, day: datetime.date) -> None:
    """A date left 'closing' goes back to 'open' (any other state is left alone)."""
    await conn.execute("UPDATE business_dates SET state = 'open', closing_at = NULL"
                       " WHERE business_date = $1 AND state = 'closing'", day)


# ------------------------------------------------------------------------------------ the money of a date

_TOTALS = """
SELECT p.bank_code AS bank, p.tax,
       count(*) AS payments_count, sum(p.total) AS payments_amount,
       sum(p.principal) AS principal, sum(p.penalty) AS penalty,
       sum(p.discount) AS discount, sum(p.penalty_waived) AS penalty_waived,
       count(r.id) AS reversals_count, coalesce(sum(p.total) FILTER (WHERE r.id IS NOT NULL), 0) AS reversals_amount,
       coalesce(sum(p.principal) FILTER (WHERE r.id IS NULL), 0) AS net_principal,
       coalesce(sum(p.penalty) FILTER (WHERE r.id IS NULL), 0) AS net_penalty
FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id
WHERE p.business_date = $1
GROUP BY p.bank_code, p.tax
"""

_LEDGER = """
SELECT bank_code AS bank, tax,
       coalesce(sum(amount) FILTER (WHERE account = 'bank'), 0) AS bank_sum,
       coalesce(sum(amount) FILTER (WHERE account = 'principal'), 0) AS principal_sum,
       coalesce(sum(amount) FILTER (WHERE account = 'penalty'), 0) AS penalty_sum,
       sum(amount) AS all_sum
FROM ledger_entries WHERE business_date = $1 GROUP BY bank_code, tax
"""

# Each payment and each reversal must balance on its own, not only in aggregate.
_UNBALANCED = """
SELECT payment_id, reversal_id, sum(amount) AS total FROM ledger_entries WHERE business_date = $1
GROUP BY payment_id, reversal_id HAVING sum(amount) <> 0 LIMIT 10
"""


async def payment_totals(conn: asyncpg.Connection, day: datetime.date) -> list[asyncpg.Record]:
    """Per bank and tax (in that order, PBB first): payments_count, payments_amount, principal, penalty,
    discount, penalty_waived, reversals_count, reversals_amount, net_principal and net_penalty of the date."""
    return await conn.fetch(_TOTALS + " ORDER BY p.bank_code, p.tax DESC", day)


async def conservation_rows(conn: asyncpg.Connection, day: datetime.date
                            ) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    """From one snapshot (a repeatable read, read only transaction): the date's payment totals per bank and
    tax (unordered), its ledger sums per bank and tax (bank_sum, principal_sum, penalty_sum, all_sum), and
    up to 10 (payment_id, reversal_id, total) whose entries do not balance."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        expected = await conn.fetch(_TOTALS, day)
        ledger = await conn.fetch(_LEDGER, day)
        unbalanced = await conn.fetch(_UNBALANCED, day)
    return expected, ledger, unbalanced


# ------------------------------------------------------------------------------------ the SISMIOP export

_SISMIOP_PAYMENTS = """
SELECT b.nop, b.tax_year, p.penalty, p.total, p.bank_code, p.ntpd
FROM payments p JOIN bills b ON b.id = p.bill_id
WHERE p.business_date = $1 AND p.tax = 'PBB'
  AND NOT EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = p.id)
ORDER BY p.bank_code, p.ntpd
"""


async def unreversed_pbb_payments(conn: asyncpg.Connection, day: datetime.date) -> list[asyncpg.Record]:
    """(nop, tax_year, penalty, total, bank_code, ntpd) of the date's PBB payments that stand, by bank and
    NTPD."""
    return await conn.fetch(_SISMIOP_PAYMENTS, day)


# ------------------------------------------------------------------------------------------ reconciliation

async def recon_reports(conn: asyncpg.Connection, day: datetime.date) -> list[asyncpg.Record]:
    """The reconciliation reports made for a business date, oldest first."""
    return await conn.fetch(
        "SELECT id, bank_code, file_name, counts, new_items, imported_at FROM recon_reports"
        " WHERE business_date = $1 ORDER BY id", day)
