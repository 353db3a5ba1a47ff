"""Support's view of payments: search, and the whole story of one payment attempt."""
from __future__ import annotations

import datetime
from typing import Any

import asyncpg

# The last answer sent about a payment: its NTPD's newest outgoing message-log row.
_LAST_RC = ("(SELECT m.response_code FROM message_log m WHERE m.ntpd = p.ntpd AND m.direction = 'out'"
            " AND m.response_code IS NOT NULL ORDER BY m.logged_at DESC LIMIT 1)")

_SEARCH = f"""
SELECT p.id, p.tax, b.bill_key AS bill_id, b.tax_year, p.bank_code AS bank, p.ntpd, p.rrn, p.stan,
       CASE WHEN r.id IS NULL THEN 'paid' ELSE 'reversed' END AS status, p.business_date, p.total AS amount,
       coalesce({_LAST_RC}, '00') AS last_response_code, coalesce(r.reversed_at, p.paid_at) AS updated_at
FROM payments p JOIN bills b ON b.id = p.bill_id LEFT JOIN reversals r ON r.payment_id = p.id
"""

FILTERS = {
    "nop": "b.nop = ${}",
    "registration_number": "(b.tax = 'BPHTB' AND b.bill_key = ${})",
    "ntpd": "p.ntpd = ${}",
    "rrn": "p.rrn = ${}",
    "stan": "p.stan = ${}",
    "bank": "p.bank_code = ${}",
    "date": "p.business_date = ${}::date",
    "before": "p.id < ${}::bigint",
}
PAGE = 100


async def search(conn: asyncpg.Connection, filters: dict[str, Any], rc: str | None = None) -> list[asyncpg.Record]:
    where, args = [], []
    for name, value in filters.items():
        args.append(value)
        where.append(FILTERS[name].format(len(args)))
    sql = _SEARCH + (" WHERE " + " AND ".join(where) if where else "")
    if rc is not None:
        args.append(rc)
        sql = f"SELECT * FROM ({sql}) t WHERE t.last_response_code = ${len(args)}"
    sql += " ORDER BY id DESC LIMIT " + str(PAGE)
    return await conn.fetch(sql, *args)


async def story(conn: asyncpg.Connection, payment_id: int) -> dict[str, Any] | None:
    head = await conn.fetchrow(_SEARCH + " WHERE p.id = $1", payment_id)
    if head is None:
        return None
    p = await conn.fetchrow("SELECT * FROM payments WHERE id = $1", payment_id)
    messages = await conn.fetch(
        "SELECT logged_at, channel, direction, event, bank_code, connection_id, mti, processing_code, stan,"
        " transmitted, rrn, response_code, ntpd, message_key, elapsed_ms, fields, detail FROM message_log"
        # The origin's messages of that year only: field 7 repeats every year (migration 0010).
        " WHERE ntpd = $1 OR (bank_code = $2 AND stan = $3 AND transmitted = $4"
        "     AND logged_at BETWEEN $6::timestamptz - interval '30 days' AND $6::timestamptz + interval '30 days')"
        " OR (bill_id = $5 AND bank_code = $2 AND logged_at BETWEEN $6::timestamptz - interval '1 hour'"
        "     AND $6::timestamptz + interval '1 hour')"
        " ORDER BY logged_at, id", p["ntpd"], p["bank_code"], p["stan"], p["transmitted"],
        head["bill_id"], p["paid_at"])
    quotes = await conn.fetch(
        "SELECT bank_code, principal, penalty, total, months_late, created_at, expires_at, discount, penalty_waived,"
        " relief_id, relief_name, relief_decree FROM quotes"
        " WHERE bill_id = $1 AND created_at <= $2 ORDER BY created_at DESC LIMIT 20", p["bill_id"], p["paid_at"])
    reversal = await conn.fetchrow("SELECT bank_code, amount, via, reason, reversed_at FROM reversals"
                                   " WHERE payment_id = $1", payment_id)
    tombstones = await conn.fetch("SELECT bank_code, stan, transmitted, amount, created_at FROM tombstones"
                                  " WHERE bank_code = $1 AND stan = $2 AND transmitted = $3 AND transmitted_year = $4",
                                  p["bank_code"], p["stan"], p["transmitted"], p["transmitted_year"])
    recon = await conn.fetch(
        "SELECT id, class, status, resolution, resolution_note, resolved_by, resolved_at, created_at"
        " FROM recon_items WHERE ntpd = $1 ORDER BY id", p["ntpd"])
    notes = await conn.fetch("SELECT author, note, created_at FROM transaction_notes WHERE payment_id = $1"
                             " ORDER BY id", payment_id)
    return {"head": head, "payment": p, "messages": messages, "quotes": quotes, "reversal": reversal,
            "tombstones": tombstones, "reconciliation": recon, "notes": notes}


async def add_note(conn: asyncpg.Connection, payment_id: int, author: str, note: str) -> bool:
    return await conn.fetchval(
        "INSERT INTO transaction_notes (payment_id, author, note) SELECT id, $2, $3 FROM payments WHERE id = $1"
        " RETURNING true", payment_id, author, note) is not None


async def resolve_item(conn: asyncpg.Connection, item_id: int, resolution: str, note: str, author: str) -> str:
    """'resolved', 'already' (resolved before: unchanged) or 'missing'."""
    row = await conn.fetchrow(
        "UPDATE recon_items SET status = 'resolved', resolution = $2, resolution_note = $3, resolved_by = $4,"
        " resolved_at = now() WHERE id = $1 AND status = 'open' RETURNING id", item_id, resolution, note, author)
    if row is not None:
        return "resolved"
    exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM recon_items WHERE id = $1)", item_id)
    return "already" if exists else "missing"


async def open_items(conn: asyncpg.Connection, day: datetime.date | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, business_date, bank_code, class, ntpd, tax, bill_id, gateway_amount, bank_amount,"
        " gateway_status, bank_status, line, created_at FROM recon_items WHERE status = 'open'"
        " AND ($1::date IS NULL OR business_date = $1) ORDER BY id LIMIT 500", day)
