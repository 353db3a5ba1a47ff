"""One NOP's PBB account (the console's "Objek pajak"): every tax year's bill with its active payment, and every
payment ever made for them, reversed ones included."""
from __future__ import annotations

import asyncpg

_YEARS = """
SELECT b.*, p.ntpd AS active_ntpd, p.bank_code AS active_bank
FROM bills b
LEFT JOIN active_payments ap ON ap.bill_id = b.id
LEFT JOIN payments p ON p.id = ap.payment_id
WHERE b.tax = 'PBB' AND b.nop = $1
ORDER BY b.tax_year DESC
"""

_PAYMENTS = """
SELECT p.id, p.ntpd, b.tax_year, p.bank_code, p.channel, p.ntb, p.principal, p.penalty, p.total, p.business_date,
       p.paid_at, r.reversed_at, pr.validation_code
FROM payments p
JOIN bills b ON b.id = p.bill_id
LEFT JOIN reversals r ON r.payment_id = p.id
LEFT JOIN proofs pr ON pr.payment_id = p.id
WHERE b.tax = 'PBB' AND b.nop = $1
ORDER BY b.tax_year DESC, p.paid_at, p.id
"""


async def pbb_years(conn: asyncpg.Connection, nop: str) -> list[asyncpg.Record]:
    """Every PBB bill of the NOP (all its columns), newest tax year first, with ``active_ntpd`` and
    ``active_bank`` of its active payment (None when it has none)."""
    return await conn.fetch(_YEARS, nop)


async def pbb_payments(conn: asyncpg.Connection, nop: str) -> list[asyncpg.Record]:
    """Every payment of the NOP's PBB bills, newest tax year first, with ``reversed_at`` (None while active)."""
    return await conn.fetch(_PAYMENTS, nop)
