"""Money conservation (spec/domain.md invariant 6): for a business date, per bank and tax,
approved payments − their reversals = the ledger's sums; every transaction's entries balance to zero.

Run by the tests and, before freezing totals, by the close of a business date.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import asyncpg

from gateway.store import settlements as store


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
    # What relief programs took off the date's payments, gross as principal and penalty (spec/operations.md
    # "Settlement report"); 0 in totals frozen before programs existed.
    discount: int = 0
    penalty_waived: int = 0

    @property
    def net_amount(self) -> int:
        return self.payments_amount - self.reversals_amount

    def report_values(self) -> tuple[int, ...]:
        """The settlement report's money columns of this bank and tax, in REPORT_KEYS' order."""
        return (self.payments_count, self.principal, self.penalty, self.payments_amount, self.reversals_count,
                self.reversals_amount, self.payments_count - self.reversals_count, self.net_amount, self.discount,
                self.penalty_waived)


# The settlement report's money columns (spec/operations.md "Settlement report"), after bank and tax.
REPORT_KEYS = ("payments_count", "principal", "penalty", "payments_amount", "reversals_count", "reversals_amount",
               "net_count", "net_amount", "discount", "penalty_waived")
_TAX_ORDER = {"PBB": 0, "BPHTB": 1}


def report_table(items: Iterable[Totals]) -> tuple[list[tuple[Totals, tuple[int, ...]]], tuple[int, ...]]:
    """The report's lines in its order (bank code, then PBB before BPHTB), each with its values in
    REPORT_KEYS' order, and the column sums of the TOTAL line: the CSV, the PDF, the staff API and the console
    all render this one table."""
    lines = [(t, t.report_values()) for t in sorted(items, key=lambda t: (t.bank, _TAX_ORDER.get(t.tax, 9), t.tax))]
    sums = tuple(sum(values[i] for _, values in lines) for i in range(len(REPORT_KEYS)))
    return lines, sums


@dataclass(frozen=True)
class Mismatch:
    bank: str
    tax: str
    what: str
    expected: int
    found: int

    def __str__(self) -> str:
        return f"{self.bank} {self.tax}: {self.what}: expected {self.expected}, ledger {self.found}"


async def totals(conn: asyncpg.Connection, business_date: date) -> list[Totals]:
    rows = await store.payment_totals(conn, business_date)
    return [Totals(r["bank"], r["tax"], r["payments_count"], r["payments_amount"], r["principal"], r["penalty"],
                   r["reversals_count"], r["reversals_amount"], r["discount"], r["penalty_waived"]) for r in rows]


async def check_conservation(conn: asyncpg.Connection, business_date: date) -> list[Mismatch]:
    """Every mismatch between payments/reversals and the ledger for the date; empty when money is conserved."""
    payments, entries, unbalanced = await store.conservation_rows(conn, business_date)
    expected = {(r["bank"], r["tax"]): r for r in payments}
    ledger = {(r["bank"], r["tax"]): r for r in entries}
    problems: list[Mismatch] = []
    for key in sorted(set(expected) | set(ledger)):
        e, led = expected.get(key), ledger.get(key)
        net = (e["payments_amount"] - e["reversals_amount"]) if e else 0
        checks = (
            ("net amount", net, led["bank_sum"] if led else 0),
            ("net principal", e["net_principal"] if e else 0, -led["principal_sum"] if led else 0),
            ("net penalty", e["net_penalty"] if e else 0, -led["penalty_sum"] if led else 0),
            ("balance", 0, led["all_sum"] if led else 0),
        )
        problems += [Mismatch(key[0], key[1], what, want, got) for what, want, got in checks if want != got]
    for row in unbalanced:
        problems.append(Mismatch("-", "-", f"entries of payment {row['payment_id']} reversal {row['reversal_id']}",
                                 0, row["total"]))
    return problems
