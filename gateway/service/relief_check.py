"""`gateway relief list|check`: which relief programs are in force on a business date, and which one a PBB-P2
bill would be given (spec/domain.md "Relief programs"), so the Bapenda can check a decree's configuration
before its window opens. Read-only: the same assessment an inquiry makes, on the given date, recording nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from gateway.domain.assessment import Amount, amount_due, tax_year_window
from gateway.domain.bills import pbb_bill_key
from gateway.domain.penalty import PenaltyPolicy
from gateway.domain.relief import ReliefProgram
from gateway.store import bills as bill_store


@dataclass(frozen=True)
class Candidate:
    program: ReliefProgram
    discount: int | None  # None: no bill to apply it to
    penalty_waived: int | None


@dataclass(frozen=True)
class ReliefCheck:
    nop: str
    tax_year: int
    business_date: date
    candidates: tuple[Candidate, ...]  # the programs whose window, tax, years and kecamatan match
    status: str | None = None  # the bill's; None when the database has no such bill
    gross: Amount | None = None  # what an unpaid bill owes on the date without relief
    due: Amount | None = None  # … and with the program that applies (due.relief: which, or None)


async def check_pbb(conn: asyncpg.Connection, programs: tuple[ReliefProgram, ...], policy: PenaltyPolicy,
                    nop: str, tax_year: int, day: date) -> ReliefCheck:
    """The programs that match NOP/``tax_year`` on business date ``day`` and, when the bill exists and is
    unpaid, what each would take off it and the amount due (its penalty counted to ``day``)."""
    matching = tuple(p for p in programs if p.covers("PBB", tax_year, nop, day))
    bill = await bill_store.find(conn, "PBB", pbb_bill_key(nop, tax_year), tax_year_window(day), day)
    if bill is None or bill["status"] != "unpaid":
        return ReliefCheck(nop, tax_year, day, tuple(Candidate(p, None, None) for p in matching),
                           status=bill["status"] if bill is not None else None)
    gross = amount_due(bill, day, policy)
    candidates = tuple(Candidate(p, *p.reductions(gross.principal, gross.penalty)) for p in matching)
    return ReliefCheck(nop, tax_year, day, candidates, bill["status"], gross,
                       amount_due(bill, day, policy, day, programs))
