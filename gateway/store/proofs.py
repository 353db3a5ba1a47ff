"""Reading payments with their proofs: a bank's payment status, receipts, and the public check."""
from __future__ import annotations

import asyncpg

_PAYMENT = """
SELECT p.ntpd, p.tax, p.bank_code, p.channel, p.ntb, p.principal, p.penalty, p.total, p.business_date,
       p.paid_at, p.discount, p.penalty_waived, p.relief_id, p.relief_name, p.relief_decree, b.bill_key, b.nop,
       b.tax_year, r.reversed_at, pr.kid, pr.document, pr.signature, pr.validation_code
FROM payments p
JOIN bills b ON b.id = p.bill_id
LEFT JOIN reversals r ON r.payment_id = p.id
LEFT JOIN proofs pr ON pr.payment_id = p.id
WHERE p.ntpd = $1
"""


async def payment_with_proof(conn: asyncpg.Connection, ntpd: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_PAYMENT, ntpd)
