"""Support's work queue: open reconciliation items and unmatched reversals (tombstones), and a tombstone's
resolution (spec/operations.md "Support console"). Tombstones never change: a resolution is a row of its own
(migration 0011), so a resolved tombstone leaves the queue and its history stays as it was."""
from __future__ import annotations

import datetime

import asyncpg

QUEUE_MAX = 500


async def open_items(conn: asyncpg.Connection, day: datetime.date | None, bank: str | None) -> list[asyncpg.Record]:
    """Open reconciliation items, oldest first, of one business date and one bank when given."""
    return await conn.fetch(
        "SELECT id, business_date, bank_code, class, ntpd, tax, bill_id, gateway_amount, bank_amount,"
        " gateway_status, bank_status, line, created_at FROM recon_items WHERE status = 'open'"
        " AND ($1::date IS NULL OR business_date = $1) AND ($2::text IS NULL OR bank_code = $2)"
        " ORDER BY id LIMIT " + str(QUEUE_MAX), day, bank)


async def open_tombstones(conn: asyncpg.Connection, day: datetime.date | None,
                          bank: str | None) -> list[asyncpg.Record]:
    """Tombstones (reversals whose original the gateway never had) without a resolution, oldest first."""
    return await conn.fetch(
        "SELECT t.id, t.business_date, t.bank_code, t.stan, t.transmitted, t.amount, t.created_at"
        " FROM tombstones t LEFT JOIN tombstone_resolutions r ON r.tombstone_id = t.id WHERE r.tombstone_id IS NULL"
        " AND ($1::date IS NULL OR t.business_date = $1) AND ($2::text IS NULL OR t.bank_code = $2)"
        " ORDER BY t.id LIMIT " + str(QUEUE_MAX), day, bank)


async def resolve_tombstone(conn: asyncpg.Connection, tombstone_id: int, resolution: str, note: str,
                            author: str) -> str:
    """'resolved', 'already' (resolved before: unchanged) or 'missing'."""
    row = await conn.fetchrow(
        "INSERT INTO tombstone_resolutions (tombstone_id, resolution, resolution_note, resolved_by)"
        " SELECT id, $2, $3, $4 FROM tombstones WHERE id = $1 ON CONFLICT (tombstone_id) DO NOTHING"
        " RETURNING tombstone_id", tombstone_id, resolution, note, author)
    if row is not None:
        return "resolved"
    exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tombstones WHERE id = $1)", tombstone_id)
    return "already" if exists else "missing"
