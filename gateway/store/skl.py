"""Surat Keterangan Lunas: the paid bill a certificate is issued for, the next issue counter, the issued
certificates, and the public check's read of one (spec/domain.md "Payment proof")."""
from __future__ import annotations

from datetime import datetime

import asyncpg

# The PBB bill of (NOP, year) with its active payment and that payment's signed proof. FOR SHARE on the bill
# row: a reversal of this bill (which takes FOR NO KEY UPDATE on it) waits until the certificate is committed,
# and a certificate asked for while a reversal is in flight waits and then sees the bill unpaid.
_PAID_PBB = """
SELECT b.id AS bill_id, b.status, p.id AS payment_id, p.ntpd, pr.document, pr.kid,
       (SELECT rp.ntpd FROM payments rp JOIN reversals r ON r.payment_id = rp.id
        WHERE rp.bill_id = b.id ORDER BY r.reversed_at DESC, r.id DESC LIMIT 1) AS reversed_ntpd
FROM bills b
LEFT JOIN active_payments ap ON ap.bill_id = b.id
LEFT JOIN payments p ON p.id = ap.payment_id
LEFT JOIN proofs pr ON pr.payment_id = p.id
WHERE b.tax = 'PBB' AND b.nop = $1 AND b.tax_year = $2
FOR SHARE OF b
"""

_NEXT_COUNTER = "SELECT coalesce(max(counter), 0) + 1 FROM skl_certificates WHERE payment_id = $1"

_INSERT = """
INSERT INTO skl_certificates (number, payment_id, counter, kid, document, signature, validation_code, issued_by,
                              issued_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
RETURNING id
"""

_BY_NUMBER = """
SELECT s.number, s.counter, s.kid, s.document, s.signature, s.validation_code, s.issued_by, s.issued_at,
       p.ntpd, r.reversed_at
FROM skl_certificates s
JOIN payments p ON p.id = s.payment_id
LEFT JOIN reversals r ON r.payment_id = s.payment_id
WHERE s.number = $1
"""

_OF_NOP = """
SELECT s.number, s.counter, s.validation_code, s.issued_by, s.issued_at, p.ntpd, b.tax_year, r.reversed_at
FROM skl_certificates s
JOIN payments p ON p.id = s.payment_id
JOIN bills b ON b.id = p.bill_id
LEFT JOIN reversals r ON r.payment_id = s.payment_id
WHERE b.tax = 'PBB' AND b.nop = $1
ORDER BY b.tax_year DESC, s.id
"""


async def paid_pbb_bill(conn: asyncpg.Connection, nop: str, tax_year: int) -> asyncpg.Record | None:
    """The bill (None when there is none) with ``status``, the NTPD of its last reversed payment
    (``reversed_ntpd``) and, when it has an active payment, ``payment_id``, ``ntpd`` and the proof's
    ``document`` (json text) and ``kid``; the bill row stays share-locked until the transaction ends."""
    return await conn.fetchrow(_PAID_PBB, nop, tax_year)


async def next_counter(conn: asyncpg.Connection, payment_id: int, ntpd: str) -> int:
    """The next issue counter of the payment's certificates. Issues for one payment are serialised by a
    transaction advisory lock (the unique (payment, counter) would refuse the loser of a race otherwise)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", f"skl:{ntpd}")
    return await conn.fetchval(_NEXT_COUNTER, payment_id)


async def insert(conn: asyncpg.Connection, *, number: str, payment_id: int, counter: int, kid: str, document: str,
                 signature: str, validation_code: str, issued_by: str, issued_at: datetime) -> int:
    return await conn.fetchval(_INSERT, number, payment_id, counter, kid, document, signature, validation_code,
                               issued_by, issued_at)


async def by_number(conn: asyncpg.Connection, number: str) -> asyncpg.Record | None:
    """An issued certificate with its payment's NTPD and the payment's reversal time (None if not reversed)."""
    return await conn.fetchrow(_BY_NUMBER, number)


async def of_nop(conn: asyncpg.Connection, nop: str) -> list[asyncpg.Record]:
    """The certificates issued for the NOP's PBB bills, newest tax year first, in issue order within a year."""
    return await conn.fetch(_OF_NOP, nop)
