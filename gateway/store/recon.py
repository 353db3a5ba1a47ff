"""Reconciliation's SQL (gateway.settlement.recon): the gateway's side of a bank's file, and the report
with its open items."""
from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import NamedTuple

import asyncpg

_PAYMENTS = """
SELECT p.id, p.ntpd, p.tax, b.bill_key, p.total, p.stan, p.transmitted, p.rrn, (r.id IS NOT NULL) AS reversed
FROM payments p JOIN bills b ON b.id = p.bill_id LEFT JOIN reversals r ON r.payment_id = p.id
WHERE p.business_date = $1 AND p.bank_code = $2
ORDER BY p.ntpd
"""


class ReconItem(NamedTuple):
    """An open reconciliation item: a report row that is not ``matched``. Empty strings are stored as NULL
    for ntpd, gateway_status and bank_status."""
    cls: str
    item_key: str
    ntpd: str
    tax: str
    bill_id: str
    gateway_amount: int | None
    bank_amount: int | None
    gateway_status: str
    bank_status: str
    line: int | None


async def payments_of_bank(conn: asyncpg.Connection, day: datetime.date, bank: str) -> list[asyncpg.Record]:
    """The bank's payments of the date, by NTPD: id, ntpd, tax, bill_key, total, stan, transmitted, rrn
    and whether it was reversed."""
    return await conn.fetch(_PAYMENTS, day, bank)


async def tombstone_origins(conn: asyncpg.Connection, bank: str) -> set[tuple[str, str]]:
    """(stan, transmitted) of every tombstone of the bank."""
    return {(t["stan"], t["transmitted"]) for t in await conn.fetch(
        "SELECT stan, transmitted FROM tombstones WHERE bank_code = $1", bank)}


async def save_report(conn: asyncpg.Connection, day: datetime.date, bank: str, file_name: str, file_sha256: bytes,
                      counts_json: str, report_csv: str, items: Iterable[ReconItem]) -> tuple[int, int]:
    """In one transaction: the report, its ``items`` (an item already open for the date and bank is not
    opened again) and the report's count of new items. Returns (report id, new items)."""
    async with conn.transaction():
        report_id: int = await conn.fetchval(
            "INSERT INTO recon_reports (business_date, bank_code, file_name, file_sha256, counts, report_csv)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
            day, bank, file_name, file_sha256, counts_json, report_csv)
        new_items = 0
        for item in items:
            inserted = await conn.fetchval(
                "INSERT INTO recon_items (business_date, bank_code, class, item_key, ntpd, tax, bill_id,"
                " gateway_amount, bank_amount, gateway_status, bank_status, line, report_id)"
                " VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, $9, NULLIF($10, ''), NULLIF($11, ''), $12, $13)"
                " ON CONFLICT (business_date, bank_code, class, item_key) DO NOTHING RETURNING id",
                day, bank, item.cls, item.item_key, item.ntpd, item.tax, item.bill_id, item.gateway_amount,
                item.bank_amount, item.gateway_status, item.bank_status, item.line, report_id)
            new_items += inserted is not None
        await conn.execute("UPDATE recon_reports SET new_items = $2 WHERE id = $1", report_id, new_items)
    return report_id, new_items
