"""Money conservation (spec/domain.md invariant 6): for a business date, per bank and tax,
approved payments − their reversals = the ledger's sums; every transaction's entries balance to zero.

Run by the tests and, before freezing totals, by the close of a business date.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg


@dataclass(frozen=True)
class Totals:
    bank: str
    tax: str
    payments_count: int
    payments_amount: int
    principal: int
    penalty: int
    reversals_count: int
    reversals_amount: int

    @property
    def net_amount(self) -> int:
        return self.payments_amount - self.reversals_amount


@dataclass(frozen=True)
class Mismatch:
    bank: str
    tax: str
    what: str
    expected: int
    found: int

    def __str__(self) -> str:
        return f"{self.bank} {self.tax}: {self.what}: expected {self.expected}, ledger {self.found}"


_TOTALS = """
SELECT p.bank_code AS bank, p.tax,
       count(*) AS payments_count, sum(p.total) AS payments_amount,
       sum(p.principal) AS principal, sum(p.penalty) AS penalty,
       count(r.id) AS reversals_count, coalesce(sum(p.total) FILTER (WHERE r.id IS NOT NULL), 0) AS reversals_amount,
       coalesce(sum(p.principal) FILTER (WHERE r.id IS NULL), 0) AS net_principal,
       coalesce(sum(p.penalty) FILTER (WHERE r.id IS NULL), 0) AS net_penalty
FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id
WHERE p.business_date = $1
GROUP BY p.bank_code, p.tax
"""

_LEDGER = """
SELECT bank_code AS bank, tax,
       coalesce(sum(amount) FILTER (WHERE account = 'bank'), 0) AS bank_sum,
       coalesce(sum(amount) FILTER (WHERE account = 'principal'), 0) AS principal_sum,
       coalesce(sum(amount) FILTER (WHERE account = 'penalty'), 0) AS penalty_sum,
       sum(amount) AS all_sum
FROM ledger_entries WHERE business_date = $1 GROUP BY bank_code, tax
"""

# Each payment and each reversal must balance on its own, not only in aggregate.
_UNBALANCED = """
SELECT payment_id, reversal_id, sum(amount) AS total FROM ledger_entries WHERE business_date = $1
GROUP BY payment_id, reversal_id HAVING sum(amount) <> 0 LIMIT 10
"""


async def totals(conn: asyncpg.Connection, business_date: date) -> list[Totals]:
    rows = await conn.fetch(_TOTALS + " ORDER BY p.bank_code, p.tax DESC", business_date)
    return [Totals(r["bank"], r["tax"], r["payments_count"], r["payments_amount"], r["principal"], r["penalty"],
                   r["reversals_count"], r["reversals_amount"]) for r in rows]


async def check_conservation(conn: asyncpg.Connection, business_date: date) -> list[Mismatch]:
    """Every mismatch between payments/reversals and the ledger for the date; empty when money is conserved."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        expected = {(r["bank"], r["tax"]): r for r in await conn.fetch(_TOTALS, business_date)}
        ledger = {(r["bank"], r["tax"]): r for r in await conn.fetch(_LEDGER, business_date)}
        unbalanced = await conn.fetch(_UNBALANCED, business_date)
    problems: list[Mismatch] = []
    for key in sorted(set(expected) | set(ledger)):
        e, l = expected.get(key), ledger.get(key)
        net = (e["payments_amount"] - e["reversals_amount"]) if e else 0
        checks = (
            ("net amount", net, l["bank_sum"] if l else 0),
            ("net principal", e["net_principal"] if e else 0, -l["principal_sum"] if l else 0),
            ("net penalty", e["net_penalty"] if e else 0, -l["penalty_sum"] if l else 0),
            ("balance", 0, l["all_sum"] if l else 0),
        )
        problems += [Mismatch(key[0], key[1], what, want, got) for what, want, got in checks if want != got]
    for row in unbalanced:
        problems.append(Mismatch("-", "-", f"entries of payment {row['payment_id']} reversal {row['reversal_id']}",
                                 0, row["total"]))
    return problems
