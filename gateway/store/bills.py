"""Reading bills and their payment state."""
from __future__ import annotations

from datetime import date

import asyncpg

from gateway.store.money import QUOTE_COLUMNS

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


# A request's one read outside any transaction (spec/domain.md "Quotes"): the database's clock, the answer
# already stored under the request's key (if any) and the bill as an inquiry sees it. The bill's columns are
# NULL when there is no such bill (``id`` is None), so the key and the clock come back either way.
_KEYED = (
    "SELECT s.db_now, s.key_hash, s.key_operation, s.key_answer, b.* FROM"
    " (SELECT statement_timestamp() AS db_now, k.content_hash AS key_hash, k.operation AS key_operation,"
    "   k.answer AS key_answer"
    "  FROM (SELECT 1) one LEFT JOIN message_keys k ON k.channel = $6 AND k.bank_code = $7 AND k.key = $8) s"
    " LEFT JOIN LATERAL ({bill}) b ON true"
)
_KEYED_INQUIRY = _KEYED.format(bill=_FOR_INQUIRY)

# The same for a payment's first read, with what its posting will check again under locks: whether the
# original was reversed already (tombstone), a live quote of this bank for the amount sent, and the NTPD's
# serial (a serial left unused by a payment that does not post is a gap, as a rollback leaves one).
_KEYED_PAYMENT = _KEYED.format(bill=_FOR_INQUIRY.replace(
    "SELECT b.*,",
    "SELECT b.*, nextval('ntpd_serial') AS serial,"
    " EXISTS (SELECT 1 FROM tombstones t WHERE t.bank_code = $7 AND t.stan = $9 AND t.transmitted = $10"
    "  AND t.transmitted_year = $11) AS tombstoned,"
    f" (SELECT row({', '.join('q.' + c for c in QUOTE_COLUMNS.split(', '))}) FROM quotes q"
    "  WHERE q.bill_id = b.id AND q.bank_code = $7 AND q.total = $12 AND q.principal + q.discount = b.principal"
    "  AND q.expires_at > statement_timestamp() + make_interval(secs => $13::float8)"
    "  ORDER BY q.created_at DESC LIMIT 1) AS quote,"))


async def read_keyed(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
                     business_date: date, key: tuple[str, str, str] | None) -> asyncpg.Record:
    """One statement, no transaction: the bill as :func:`find` reads it, ``db_now``, and ``key_hash``,
    ``key_operation``, ``key_answer`` of the answer stored under ``key`` = (channel, bank, key), if any."""
    channel, bank, name = key if key is not None else (None, None, None)
    return await conn.fetchrow(_KEYED_INQUIRY, tax, bill_key, *years, business_date, channel, bank, name)


async def read_for_payment(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
                           business_date: date, key: tuple[str, str, str] | None, bank: str,
                           origin: tuple[str, str, int] | None, amount: int, offset_s: float) -> asyncpg.Record:
    """:func:`read_keyed` plus ``serial``, ``tombstoned`` (for ``origin`` = (STAN, field 7, its year)) and
    ``quote`` = this bank's newest live quote for ``amount``, its fields in money.QUOTE_COLUMNS' order."""
    channel, _, name = key if key is not None else (None, None, None)
    stan, transmitted, year = origin if origin is not None else (None, None, None)
    return await conn.fetchrow(_KEYED_PAYMENT, tax, bill_key, *years, business_date, channel, bank, name,
                               stan, transmitted, year, amount, offset_s)


async def find(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
               business_date: date) -> asyncpg.Record | None:
    """The bill with its active payment (if any), its NOP's unpaid years within ``years`` and the state of
    ``business_date`` (None while the date has no row)."""
    return await conn.fetchrow(_FOR_INQUIRY, tax, bill_key, *years, business_date)


# One statement for everything a payment must hold or know before it posts, to spare round trips: the
# business date's row (FOR KEY SHARE: a close waits for this transaction), the bill's row (FOR NO KEY UPDATE:
# payments of one bill queue here), whether the original was already reversed (tombstone), and the serial
# of the NTPD. The advisory lock on the origin is taken by the statement before, so this statement's
# snapshot already sees any tombstone written under that lock.
_FOR_PAYMENT = (
    "WITH d AS (SELECT state FROM business_dates WHERE business_date = $5 FOR KEY SHARE) "
    + _BILL.replace("SELECT b.*,", "SELECT b.*, (SELECT state FROM d) AS date_state,"
                    " EXISTS (SELECT 1 FROM tombstones t WHERE t.bank_code = $6 AND t.stan = $7"
                    " AND t.transmitted = $8 AND t.transmitted_year = $9) AS tombstoned,"
                    " nextval('ntpd_serial') AS serial,")
    + " FOR NO KEY UPDATE OF b"
)


async def lock_for_payment(conn: asyncpg.Connection, tax: str, bill_key: str, years: tuple[int, int],
                           business_date: date, bank: str, stan: str | None,
                           transmitted: str | None, transmitted_year: int | None) -> asyncpg.Record | None:
    """The bill row locked until the transaction ends, with ``date_state`` (None when the date has no row
    yet), ``tombstoned`` and ``serial``. The active-payment columns are not re-read after waiting for the
    lock: when ``status`` is paid, ask :func:`active_payment`."""
    return await conn.fetchrow(_FOR_PAYMENT, tax, bill_key, *years, business_date, bank, stan, transmitted,
                               transmitted_year)


async def active_payment(conn: asyncpg.Connection, bill_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT p.ntpd, p.bank_code FROM active_payments ap JOIN payments p ON p.id = ap.payment_id"
        " WHERE ap.bill_id = $1", bill_id)


async def lock_by_id(conn: asyncpg.Connection, bill_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM bills WHERE id = $1 FOR NO KEY UPDATE", bill_id)


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


# --- bills to show or to pay in demos and load tests ----------------------------------------------------


async def first_unpaid_pbb(conn: asyncpg.Connection, tax_year: int) -> asyncpg.Record | None:
    """(nop, tax_year) of the unpaid PBB bill of ``tax_year`` with the lowest NOP, if any."""
    return await conn.fetchrow(
        "SELECT nop, tax_year FROM bills WHERE tax = 'PBB' AND status = 'unpaid' AND tax_year = $1"
        " ORDER BY nop LIMIT 1", tax_year)


async def first_payable_bphtb(conn: asyncpg.Connection) -> str | None:
    """The lowest registration number of an unpaid BPHTB bill still valid today, if any."""
    bill_key: str | None = await conn.fetchval(
        "SELECT bill_key FROM bills WHERE tax = 'BPHTB' AND status = 'unpaid'"
        " AND valid_until >= current_date ORDER BY bill_key LIMIT 1")
    return bill_key


async def payable_bills(conn: asyncpg.Connection, taxes: list[str], limit: int) -> list[asyncpg.Record]:
    """(tax, bill_key) of up to ``limit`` unpaid bills of ``taxes`` in id order; a BPHTB bill only while it
    is valid beyond today."""
    return await conn.fetch(
        "SELECT tax, bill_key FROM bills WHERE status = 'unpaid' AND tax = ANY($1::text[])"
        " AND (tax = 'PBB' OR valid_until >= current_date + 1) ORDER BY id LIMIT $2",
        taxes, limit)
