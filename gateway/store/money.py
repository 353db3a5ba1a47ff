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

if TYPE_CHECKING:
    from gateway.proofs.signing import SignedProof


async def record_quote(conn: asyncpg.Connection, bill_id: int, bank: str, principal: int, penalty: int,
                       months_late: int, now: datetime, expires_at: datetime) -> int:
    return await conn.fetchval(
        "INSERT INTO quotes (bill_id, bank_code, principal, penalty, total, months_late, created_at, expires_at)"
        " VALUES ($1, $2, $3::bigint, $4::bigint, $3::bigint + $4::bigint, $5, $6, $7) RETURNING id",
        bill_id, bank, principal, penalty, months_late, now, expires_at,
    )


async def live_quote(conn: asyncpg.Connection, bill_id: int, bank: str, total: int, principal: int,
                     now: datetime) -> asyncpg.Record | None:
    """The newest unexpired quote of this bank for this bill and amount, of the bill's current principal."""
    return await conn.fetchrow(
        "SELECT id, principal, penalty, total, months_late FROM quotes"
        " WHERE bill_id = $1 AND bank_code = $2 AND total = $3 AND principal = $4 AND expires_at > $5"
        " ORDER BY created_at DESC LIMIT 1",
        bill_id, bank, total, principal, now,
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
    principal: int
    penalty: int
    months_late: int
    quote_id: int | None
    business_date: date
    paid_at: datetime
    proof: "SignedProof | None" = None


async def insert_payment(conn: asyncpg.Connection, p: NewPayment) -> int:
    """The payment, its active mark, the bill's status and three balanced ledger entries, at once."""
    return await conn.fetchval(
        """
        WITH pay AS (
            INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, terminal_id, rrn, stan,
                                  transmitted, principal, penalty, total, months_late, quote_id, business_date,
                                  paid_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::bigint, $13::bigint, $12::bigint + $13::bigint,
                    $14, $15, $16::date, $17::timestamptz)
            RETURNING id),
        act AS (INSERT INTO active_payments (bill_id, payment_id) SELECT $2, id FROM pay),
        upd AS (UPDATE bills SET status = 'paid', updated_at = $17 WHERE id = $2),
        led AS (
            INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id)
            SELECT $16, $4, $3, v.account, v.amount, pay.id
            FROM pay, (VALUES ('bank', $12::bigint + $13::bigint), ('principal', -$12::bigint),
                              ('penalty', -$13::bigint)) AS v (account, amount)),
        prf AS (
            INSERT INTO proofs (payment_id, ntpd, kid, document, signature, validation_code)
            SELECT pay.id, $1, $18, $19::jsonb, $20, $21 FROM pay WHERE $18::text IS NOT NULL)
        SELECT id FROM pay
        """,
        p.ntpd, p.bill_id, p.tax, p.bank, p.channel, p.via, p.ntb, p.terminal_id or None, p.rrn, p.stan,
        p.transmitted, p.principal, p.penalty, p.months_late, p.quote_id, p.business_date, p.paid_at,
        p.proof.kid if p.proof else None, json.dumps(p.proof.document) if p.proof else None,
        p.proof.signature if p.proof else None, p.proof.validation_code if p.proof else None,
    )


_PAYMENT = (
    "SELECT p.*, r.id AS reversal_id, b.bill_key FROM payments p"
    " JOIN bills b ON b.id = p.bill_id LEFT JOIN reversals r ON r.payment_id = p.id"
)


async def payment_by_ntpd(conn: asyncpg.Connection, ntpd: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_PAYMENT + " WHERE p.ntpd = $1", ntpd)


async def payment_by_origin(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        _PAYMENT + " WHERE p.bank_code = $1 AND p.stan = $2 AND p.transmitted = $3", bank, stan, transmitted)


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


async def tombstone_exists(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM tombstones WHERE bank_code = $1 AND stan = $2 AND transmitted = $3)",
        bank, stan, transmitted)


async def insert_tombstone(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str, forwarding: str,
                           amount: int, business_date: date, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO tombstones (bank_code, stan, transmitted, forwarding, amount, business_date, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        bank, stan, transmitted, forwarding, amount, business_date, now)


async def lock_origin(conn: asyncpg.Connection, bank: str, stan: str, transmitted: str) -> None:
    """Serialise a payment and a reversal naming the same original (bank, STAN, field 7) until commit,
    so a reversal racing its own payment sees it, or leaves a tombstone the payment sees."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", f"origin:{bank}:{stan}:{transmitted}")
