"""Reading bills and their payment state."""
from __future__ import annotations

from datetime import date

import asyncpg

_BILL = (
    "SELECT b.*, ap.payment_id AS active_payment_id, p.ntpd AS active_ntpd, p.bank_code AS active_bank,"
    # The NOP's unpaid PBB years in the window, for "other unpaid years" (field 62 slot 15).
    " CASE WHEN b.tax = 'PBB' THEN ARRAY(SELECT u.tax_year FROM bills u WHERE u.tax = 'PBB' AND u.nop = b.nop"
    "   AND u.status = 'unpaid' AND u.tax_year BETWEEN $3 AND $4) END AS unpaid_years"
    " FROM bills b LEFT JOIN active_payments ap ON ap.bill_id = b.id"
    " LEFT JOIN payments p ON p.id = ap.payment_id"
    " WHERE b.tax = $1 AND b.bill_key = $2"
)


_FOR_INQUIRY = _BILL.replace(
    "SELECT b.*,", "SELECT b.*, (SELECT state FROM business_dates WHERE business_date = $5) AS date_state,")


async def find(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
               business_date: date) -> asyncpg.Record | None:
    """The bill with its active payment (if any), its NOP's unpaid years within ``years`` and the state of
    ``business_date`` (None while the date has no row)."""
    return await conn.fetchrow(_FOR_INQUIRY, tax, bill_key, *years, business_date)


# One statement for everything a payment must hold or know before it posts, to spare round trips: the
# business date's row (FOR KEY SHARE: a close waits for this transaction), the bill's row (FOR UPDATE:
# payments of one bill queue here), whether the original was already reversed (tombstone), and the serial
# of the NTPD. The advisory lock on the origin is taken by the statement before, so this statement's
# snapshot already sees any tombstone written under that lock.
_FOR_PAYMENT = (
    "WITH d AS (SELECT state FROM business_dates WHERE business_date = $5 FOR KEY SHARE) "
    + _BILL.replace("SELECT b.*,", "SELECT b.*, (SELECT state FROM d) AS date_state,"
                    " EXISTS (SELECT 1 FROM tombstones t WHERE t.bank_code = $6 AND t.stan = $7"
                    " AND t.transmitted = $8) AS tombstoned, nextval('ntpd_serial') AS serial,")
    + " FOR UPDATE OF b"
)


async def lock_for_payment(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
                           business_date: date, bank: str, stan: str | None,
                           transmitted: str | None) -> asyncpg.Record | None:
    """The bill row locked until the transaction ends, with ``date_state`` (None when the date has no row
    yet), ``tombstoned`` and ``serial``. The active-payment columns are not re-read after waiting for the
    lock: when ``status`` is paid, ask :func:`active_payment`."""
    return await conn.fetchrow(_FOR_PAYMENT, tax, bill_key, *years, business_date, bank, stan, transmitted)


async def active_payment(conn: asyncpg.Connection, bill_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT p.ntpd, p.bank_code FROM active_payments ap JOIN payments p ON p.id = ap.payment_id"
        " WHERE ap.bill_id = $1", bill_id)


async def lock_by_id(conn: asyncpg.Connection, bill_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bills WHERE id = $1 FOR UPDATE", bill_id)


async def pbb_bills_of_nop(conn: asyncpg.Connection, nop: str, first_year: int, last_year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT b.*, p.ntpd AS active_ntpd, p.bank_code AS active_bank FROM bills b"
        " LEFT JOIN active_payments ap ON ap.bill_id = b.id LEFT JOIN payments p ON p.id = ap.payment_id"
        " WHERE b.tax = 'PBB' AND b.nop = $1 AND b.tax_year BETWEEN $2 AND $3 ORDER BY b.tax_year DESC",
        nop, first_year, last_year,
    )


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
