"""Reading bills and their payment state."""
from __future__ import annotations

from datetime import date

import asyncpg

_BILL = (
    "SELECT b.*, ap.payment_id AS active_payment_id, p.ntpd AS active_ntpd, p.bank_code AS active_bank"
    " FROM bills b LEFT JOIN active_payments ap ON ap.bill_id = b.id"
    " LEFT JOIN payments p ON p.id = ap.payment_id"
    " WHERE b.tax = $1 AND b.bill_key = $2"
)


async def find(conn: asyncpg.Connection, tax: str, bill_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_BILL, tax, bill_key)


async def lock(conn: asyncpg.Connection, tax: str, bill_key: str) -> asyncpg.Record | None:
    """The bill row, locked until the transaction ends: payments and reversals of one bill queue here."""
    return await conn.fetchrow(_BILL + " FOR UPDATE OF b", tax, bill_key)


async def lock_by_id(conn: asyncpg.Connection, bill_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bills WHERE id = $1 FOR UPDATE", bill_id)


async def pbb_bills_of_nop(conn: asyncpg.Connection, nop: str, first_year: int, last_year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT b.*, p.ntpd AS active_ntpd, p.bank_code AS active_bank FROM bills b"
        " LEFT JOIN active_payments ap ON ap.bill_id = b.id LEFT JOIN payments p ON p.id = ap.payment_id"
        " WHERE b.tax = 'PBB' AND b.nop = $1 AND b.tax_year BETWEEN $2 AND $3 ORDER BY b.tax_year DESC",
        nop, first_year, last_year,
    )


async def pbb_unpaid_years(conn: asyncpg.Connection, nop: str, first_year: int, last_year: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT tax_year FROM bills WHERE tax = 'PBB' AND nop = $1 AND status = 'unpaid'"
        " AND tax_year BETWEEN $2 AND $3",
        nop, first_year, last_year,
    )
    return [r["tax_year"] for r in rows]


async def nop_has_bills(conn: asyncpg.Connection, nop: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM bills WHERE tax = 'PBB' AND nop = $1)", nop)


async def lock_business_date(conn: asyncpg.Connection, day: date) -> str:
    """The date's state, holding FOR KEY SHARE on its row so a close cannot pass this transaction."""
    state = await conn.fetchval(
        "SELECT state FROM business_dates WHERE business_date = $1 FOR KEY SHARE", day)
    if state is None:
        await conn.execute(
            "INSERT INTO business_dates (business_date) VALUES ($1) ON CONFLICT DO NOTHING", day)
        state = await conn.fetchval(
            "SELECT state FROM business_dates WHERE business_date = $1 FOR KEY SHARE", day)
    return state
