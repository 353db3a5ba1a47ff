"""Appending money rows: quotes, payments, reversals, tombstones and their ledger entries.

Each function is one statement (data-modifying CTEs), so a payment costs few round trips and its rows
cannot be half-written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import asyncpg

from gateway.domain.log_row import COLUMNS, LogRow
from gateway.domain.relief import Relief

if TYPE_CHECKING:
    from gateway.proofs.signing import SignedProof


# A quote's lifetime is measured by the database's clock, the one clock every gateway instance shares (two
# instances' clocks a few seconds apart must not shorten or stretch it), shifted by the gateway's clock offset
# (`[testing]`, or a test's fixed clock): offset_s = gateway now − real now.
_DB_NOW = "(statement_timestamp() + make_interval(secs => $6::float8))"


# An approved inquiry's quote and its message key in one statement that does not wait for the WAL to reach
# the disk (spec/domain.md "Quotes": a quote and an inquiry's key are not money). set_config(…, true) lasts
# until the statement's own transaction commits, and that commit is the one it makes asynchronous; the
# next synchronous commit of any session flushes it with its own.
_QUOTE_AND_KEY = """
WITH s AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v),
q AS (INSERT INTO quotes (bill_id, bank_code, principal, penalty, total, months_late, created_at, expires_at,
                         discount, penalty_waived, relief_id, relief_name, relief_decree)
      SELECT $1, $2, $3::bigint, $4::bigint, $3::bigint + $4::bigint, $5, $6, $7, $13, $14, $15, $16, $17 FROM s
      WHERE $1::bigint IS NOT NULL),
k AS (INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)
      SELECT $8, $2, $9, $10, $11, $12::json FROM s WHERE $9::text IS NOT NULL
      ON CONFLICT DO NOTHING RETURNING id)
SELECT count(*) FROM s, k
"""


@dataclass(frozen=True)
class NewQuote:
    bill_id: int
    principal: int
    penalty: int
    months_late: int
    created_at: datetime
    expires_at: datetime
    discount: int = 0
    penalty_waived: int = 0
    relief: Relief | None = None


def _relief_args(relief: Relief | None) -> tuple[str | None, str | None, str | None]:
    return (relief.id, relief.name, relief.decree) if relief is not None else (None, None, None)


async def record_inquiry(conn: asyncpg.Connection, bank: str, quote: NewQuote | None,
                         key: tuple[str, str, bytes, str, str] | None) -> bool:
    """Record ``quote`` (if any) and the answer under ``key`` = (channel, key, content hash, operation,
    answer as JSON text), asynchronously committed. False when the key already held an answer."""
    q = (quote.bill_id, quote.principal, quote.penalty, quote.months_late, quote.created_at, quote.expires_at) \
        if quote is not None else (None, 0, 0, 0, None, None)
    cut = (quote.discount, quote.penalty_waived, *_relief_args(quote.relief)) if quote is not None \
        else (0, 0, None, None, None)
    channel, name, content_hash, operation, answer = key if key is not None else (None, None, None, None, None)
    stored = await conn.fetchval(_QUOTE_AND_KEY, q[0], bank, *q[1:], channel, name, content_hash, operation,
                                 answer, *cut)
    return key is None or stored == 1


# Many approved inquiries' quotes and keys in one statement, asynchronously committed like _QUOTE_AND_KEY
# (gateway.service.inquiry_recorder writes them behind the answers). Arrays, one element per row: $1-$12 the
# quotes, $13-$18 the keys. A key already taken (the same request answered meanwhile by another process)
# is skipped.
_QUOTES_AND_KEYS = """
WITH s AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v),
q AS (INSERT INTO quotes (bill_id, bank_code, principal, penalty, total, months_late, created_at, expires_at,
                         discount, penalty_waived, relief_id, relief_name, relief_decree)
      SELECT u.bill_id, u.bank, u.principal, u.penalty, u.principal + u.penalty, u.months_late, u.created_at,
             u.expires_at, u.discount, u.penalty_waived, u.relief_id, u.relief_name, u.relief_decree
      FROM s, unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::smallint[], $6::timestamptz[],
                     $7::timestamptz[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[])
              AS u(bill_id, bank, principal, penalty, months_late, created_at, expires_at, discount,
                   penalty_waived, relief_id, relief_name, relief_decree)),
k AS (INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)
      SELECT u.channel, u.bank, u.key, u.content_hash, u.operation, u.answer::json
      FROM s, unnest($13::text[], $14::text[], $15::text[], $16::bytea[], $17::text[], $18::text[])
              AS u(channel, bank, key, content_hash, operation, answer)
      ON CONFLICT DO NOTHING RETURNING id)
SELECT count(*) FROM s, k
"""


async def record_inquiries(conn: asyncpg.Connection,
                           quotes: list[tuple[str, NewQuote]],
                           keys: list[tuple[str, tuple[str, str, bytes, str, str]]], *,
                           timeout: float | None = None) -> int:
    """Record ``quotes`` = [(bank, quote)] and ``keys`` = [(bank, (channel, key, content hash, operation,
    answer as JSON text))] in one asynchronously committed statement; the number of keys written (a key
    already taken is skipped)."""
    qcols: list[list] = [[] for _ in range(12)]
    for bank, q in quotes:
        values = (q.bill_id, bank, q.principal, q.penalty, q.months_late, q.created_at, q.expires_at, q.discount,
                  q.penalty_waived, *_relief_args(q.relief))
        for column, value in zip(qcols, values):
            column.append(value)
    kcols: list[list] = [[] for _ in range(6)]
    for bank, (channel, name, content_hash, operation, answer) in keys:
        for column, item in zip(kcols, (channel, bank, name, content_hash, operation, answer)):
            column.append(item)
    written: int = await conn.fetchval(_QUOTES_AND_KEYS, *qcols, *kcols, timeout=timeout)
    return written


# A quote as a payment books it: the amounts to pay, the reductions and the program (spec/domain.md "Quotes").
QUOTE_COLUMNS = ("id, principal, penalty, total, months_late, discount, penalty_waived, relief_id, relief_name,"
                 " relief_decree")


async def live_quote(conn: asyncpg.Connection, bill_id: int, bank: str, total: int, principal: int,
                     offset_s: float) -> asyncpg.Record | None:
    """The newest unexpired quote of this bank for this bill and amount, of the bill's current (gross)
    principal."""
    return await conn.fetchrow(
        f"SELECT {QUOTE_COLUMNS} FROM quotes"
        " WHERE bill_id = $1 AND bank_code = $2 AND total = $3 AND principal + discount = $4"
        f" AND expires_at > {_DB_NOW.replace('$6', '$5')}"
        " ORDER BY created_at DESC LIMIT 1",
        bill_id, bank, total, principal, offset_s,
    )


@dataclass(frozen=True)
class NewPayment:
    ntpd: str
    bill_id: int
    tax: str
    bank: str
    channel: str
    via: str
    ntb: str
    terminal_id: str
    rrn: str | None
    stan: str | None
    transmitted: str | None
    transmitted_year: int | None
    principal: int
    penalty: int
    months_late: int
    quote_id: int | None
    business_date: date
    paid_at: datetime
    proof: "SignedProof | None" = None
    discount: int = 0
    penalty_waived: int = 0
    relief: Relief | None = None


# A payment's row and what goes with it, shared by both ways of posting (insert_payment inside the
# transaction path, _POST alone): parameters $1-$27 are _payment_args'.
_PAYMENT_COLUMNS = ("ntpd, bill_id, tax, bank_code, channel, via, ntb, terminal_id, rrn, stan, transmitted,"
                    " principal, penalty, total, months_late, quote_id, business_date, paid_at, transmitted_year,"
                    " discount, penalty_waived, relief_id, relief_name, relief_decree")
_PAYMENT_VALUES = ("$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::bigint, $13::bigint,"
                   " $12::bigint + $13::bigint, $14, $15, $16::date, $17::timestamptz, $22::smallint,"
                   " $23::bigint, $24::bigint, $25, $26, $27")
_PAYMENT_ARGS = 27
# The active mark, the bill's status, three balanced ledger entries and the proof, for the row of `pay` (none
# without one).
_WITH_THE_PAYMENT = """
act AS (INSERT INTO active_payments (bill_id, payment_id) SELECT $2, id FROM pay),
upd AS (UPDATE bills SET status = 'paid', updated_at = $17 FROM pay WHERE bills.id = $2),
led AS (
    INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id)
    SELECT $16, $4, $3, v.account, v.amount, pay.id
    FROM pay, (VALUES ('bank', $12::bigint + $13::bigint), ('principal', -$12::bigint),
                      ('penalty', -$13::bigint)) AS v (account, amount)),
prf AS (
    INSERT INTO proofs (payment_id, ntpd, kid, document, signature, validation_code)
    SELECT pay.id, $1, $18, $19::jsonb, $20, $21 FROM pay WHERE $18::text IS NOT NULL)"""

_INSERT_PAYMENT = (f"WITH pay AS (INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES ({_PAYMENT_VALUES}) RETURNING id),"
                   f"{_WITH_THE_PAYMENT} SELECT id FROM pay")


def _payment_args(p: "NewPayment") -> tuple:
    return (p.ntpd, p.bill_id, p.tax, p.bank, p.channel, p.via, p.ntb, p.terminal_id or None, p.rrn, p.stan,
            p.transmitted, p.principal, p.penalty, p.months_late, p.quote_id, p.business_date, p.paid_at,
            p.proof.kid if p.proof else None, (p.proof.document_json or json.dumps(p.proof.document)) if p.proof else None,
            p.proof.signature if p.proof else None, p.proof.validation_code if p.proof else None,
            p.transmitted_year, p.discount, p.penalty_waived, *_relief_args(p.relief))


async def insert_payment(conn: asyncpg.Connection, p: NewPayment) -> int:
    """The payment, its active mark, the bill's status and three balanced ledger entries, at once."""
    return await conn.fetchval(_INSERT_PAYMENT, *_payment_args(p))


def origin_lock_key(bank: str, stan: str, transmitted: str, year: int) -> str:
    """The advisory lock a payment and a reversal naming the same original both take (see lock_origin)."""
    return f"origin:{bank}:{stan}:{year}{transmitted}"


# A whole payment in one autocommitted statement (the fast path of payment/posting.py): gw_payment_guard
# (migration 0014) takes the locks and checks what may have changed since the caller's read; then the
# message key, and only if the key was new the payment, its active mark, the bill's status, the ledger, the
# proof and the answer's message-log row. Nothing is written when the guard says no or the key is taken.
# Parameters after the payment's: $28 the origin's lock, $29 the bill version seen, $30-$34 the key.
_LOG_FROM = _PAYMENT_ARGS + 8
_POST = f"""
WITH g AS MATERIALIZED (SELECT gw_payment_guard($28, $4, $10, $11, $22::smallint, $16::date, $2::bigint, $29)
                        AS ok),
k AS (INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)
      SELECT $30, $4, $31, $32, $33, $34::json FROM g WHERE g.ok AND $31::text IS NOT NULL
      ON CONFLICT DO NOTHING RETURNING id),
pay AS (
    INSERT INTO payments ({_PAYMENT_COLUMNS}) SELECT {_PAYMENT_VALUES}
    FROM g WHERE g.ok AND ($31::text IS NULL OR EXISTS (SELECT 1 FROM k))
    RETURNING id),{_WITH_THE_PAYMENT},
lg AS (
    INSERT INTO message_log ({', '.join(COLUMNS)})
    SELECT {', '.join(f"${i + _LOG_FROM}" + ("::jsonb" if c == "fields" else "") for i, c in enumerate(COLUMNS))}
    FROM pay WHERE ${_LOG_FROM + len(COLUMNS)}::boolean)
SELECT g.ok, (SELECT id FROM k) AS key_id, (SELECT id FROM pay) AS payment_id FROM g
"""


@dataclass(frozen=True)
class Posted:
    guarded: bool  # the guard let the payment through
    key_taken: bool  # … but the message key already held an answer: nothing was written
    payment_id: int | None


async def post_payment(conn: asyncpg.Connection, p: "NewPayment", seen: datetime,
                       key: tuple[str, str, bytes, str, str] | None, log_row: LogRow | None) -> Posted:
    """Post ``p`` in one statement if its bill is still the unpaid version last updated at ``seen`` (see
    _POST); ``key`` = (channel, key, content hash, operation, answer as JSON text)."""
    lock = origin_lock_key(p.bank, p.stan, p.transmitted, p.transmitted_year) \
        if p.stan is not None and p.transmitted is not None and p.transmitted_year is not None else None
    channel, name, content_hash, operation, answer = key if key is not None else (None, None, None, None, None)
    log_values = log_row.record() if log_row is not None else (None,) * len(COLUMNS)
    row = await conn.fetchrow(_POST, *_payment_args(p), lock, seen, channel, name, content_hash, operation, answer,
                              *log_values, log_row is not None)
    return Posted(guarded=row["ok"], key_taken=row["ok"] and key is not None and row["key_id"] is None,
                  payment_id=row["payment_id"])


_PAYMENT = (
    "SELECT p.*, r.id AS reversal_id, b.bill_key FROM payments p"
    " JOIN bills b ON b.id = p.bill_id LEFT JOIN reversals r ON r.payment_id = p.id"
)


async def payment_by_ntpd(conn: asyncpg.Connection, ntpd: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_PAYMENT + " WHERE p.ntpd = $1", ntpd)


async def payment_by_origin(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str,
                            year: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        _PAYMENT + " WHERE p.bank_code = $1 AND p.stan = $2 AND p.transmitted = $3 AND p.transmitted_year = $4",
        bank, stan, transmitted, year)


async def reversal_of(conn: asyncpg.Connection, payment_id: int) -> int | None:
    return await conn.fetchval("SELECT id FROM reversals WHERE payment_id = $1", payment_id)


async def insert_reversal(conn: asyncpg.Connection, payment: asyncpg.Record, *, via: str, reason: str,
                          received_business_date: date, now: datetime) -> int:
    """The reversal, the mirror ledger entries on the payment's date, the bill back to unpaid."""
    return await conn.fetchval(
        """
        WITH rev AS (
            INSERT INTO reversals (payment_id, bank_code, amount, via, reason, received_business_date, reversed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id),
        act AS (DELETE FROM active_payments WHERE payment_id = $1),
        upd AS (UPDATE bills SET status = 'unpaid', updated_at = $7 WHERE id = $8),
        led AS (
            INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id, reversal_id)
            SELECT $9, $2, $10, v.account, v.amount, $1, rev.id
            FROM rev, (VALUES ('bank', -$3::bigint), ('principal', $11::bigint), ('penalty', $12::bigint))
                 AS v (account, amount))
        SELECT id FROM rev
        """,
        payment["id"], payment["bank_code"], payment["total"], via, reason or None, received_business_date, now,
        payment["bill_id"], payment["business_date"], payment["tax"], payment["principal"], payment["penalty"],
    )


async def tombstone_exists(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str, year: int) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tombstones WHERE bank_code = $1 AND stan = $2 AND transmitted = $3"
        " AND transmitted_year = $4)", bank, stan, transmitted, year)


async def insert_tombstone(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str, year: int,
                           forwarding: str, amount: int, business_date: date, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO tombstones (bank_code, stan, transmitted, transmitted_year, forwarding, amount, business_date,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        bank, stan, transmitted, year, forwarding, amount, business_date, now)


async def lock_origin(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str, year: int) -> None:
    """Serialise a payment and a reversal naming the same original (bank, STAN, field 7 and its year) until
    commit, so a reversal racing its own payment sees it, or leaves a tombstone the payment sees."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                       origin_lock_key(bank, stan, transmitted, year))
