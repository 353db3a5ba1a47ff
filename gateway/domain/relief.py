"""Relief programs: early-payment discounts and penalty waivers decreed by the Wali Kota (spec/domain.md
"Relief programs").

Pure: a program is data from the configuration; which program applies to a bill on a business date, and by
how much it reduces the bill, are functions of the program list, the bill's facts and the amounts due. Every
path that shows or books an amount (inquiry, arrears, payment, quote, the staff pages) goes through
``best_reduction`` (by way of ``assessment.amount_due``), so the reduction is worked out in this one place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .money import round_half_up

TAXES = ("PBB", "BPHTB")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Relief:
    """The program a reduction came from, as quotes, payments, proofs and receipts keep it: a payment is
    reported with the program it was booked under even after the configuration no longer has it."""

    id: str
    name: str
    decree: str


@dataclass(frozen=True)
class ReliefProgram:
    id: str
    name: str
    decree: str
    starts: date  # `from`: the first business date it applies on
    ends: date  # `to`: the last one (a window ends at the cut-off of its `to` date)
    taxes: frozenset[str]  # "PBB", "BPHTB"
    principal_discount: Decimal  # percent, 0..100
    penalty_waiver: Decimal  # percent, 0..100
    min_year: int | None = None
    max_year: int | None = None
    current_year: bool = False  # tax_years = "current": the business date's year only
    kecamatan: frozenset[str] = frozenset()  # 3-digit codes (NOP digits 5-7); empty: every kecamatan

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise ValueError(problem)

    @property
    def relief(self) -> Relief:
        return Relief(self.id, self.name, self.decree)

    def open_on(self, business_date: date) -> bool:
        """Whether ``business_date`` falls in the window (``from`` and ``to`` included)."""
        return self.starts <= business_date <= self.ends

    def covers(self, tax: str, tax_year: int, nop: str, business_date: date) -> bool:
        """Whether the program's window, tax, tax years and kecamatan match the bill on ``business_date``."""
        if not self.open_on(business_date) or tax not in self.taxes:
            return False
        if self.current_year and tax_year != business_date.year:
            return False
        if self.min_year is not None and tax_year < self.min_year:
            return False
        if self.max_year is not None and tax_year > self.max_year:
            return False
        return not self.kecamatan or nop[4:7] in self.kecamatan

    def reductions(self, principal: int, penalty: int) -> tuple[int, int]:
        """(discount, penalty waived): each part rounded half up on its own."""
        return (round_half_up(principal * self.principal_discount / _HUNDRED),
                round_half_up(penalty * self.penalty_waiver / _HUNDRED))

    def years_text(self) -> str:
        """How the tax years read in a listing: "current", "2010-2020", "<=2020", ">=2010" or "all"."""
        if self.current_year:
            return "current"
        if self.min_year is not None and self.max_year is not None:
            return f"{self.min_year}-{self.max_year}"
        if self.max_year is not None:
            return f"<={self.max_year}"
        if self.min_year is not None:
            return f">={self.min_year}"
        return "all"


def _problem(p: ReliefProgram) -> str | None:
    """What is wrong with a program, named by its key, or None."""
    if not isinstance(p.id, str) or not _ID.fullmatch(p.id):
        return "id: 1-32 letters, digits, '.', '_' or '-' required"
    if not p.name.strip():
        return "name: required"
    if not p.decree.strip():
        return "decree: required (the decree's reference)"
    if p.starts > p.ends:
        return f"from: {p.starts} is after to {p.ends}"
    if not p.taxes or not p.taxes <= set(TAXES):
        return "taxes: a non-empty list of 'pbb' and 'bphtb'"
    for key, value in (("principal_discount", p.principal_discount), ("penalty_waiver", p.penalty_waiver)):
        if not isinstance(value, Decimal) or not value.is_finite() or not Decimal(0) <= value <= _HUNDRED:
            return f"{key}: a percentage from 0 to 100 required"
    if p.current_year and (p.min_year is not None or p.max_year is not None):
        return "tax_years: \"current\" or {min, max}, not both"
    if p.min_year is not None and p.max_year is not None and p.min_year > p.max_year:
        return f"tax_years: min {p.min_year} is above max {p.max_year}"
    for year in (p.min_year, p.max_year):
        if year is not None and not 1900 <= year <= 9999:
            return f"tax_years: {year} is not a tax year"
    for code in p.kecamatan:
        if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isdigit()):
            return f"kecamatan: {code!r} is not a 3-digit kecamatan code"
    return None


@dataclass(frozen=True)
class Reduction:
    """What a program takes off a bill's gross amounts: nothing (``relief`` None) or the best program's."""

    discount: int = 0
    penalty_waived: int = 0
    relief: Relief | None = None


NO_REDUCTION = Reduction()


def best_reduction(programs: tuple[ReliefProgram, ...], *, tax: str, tax_year: int, nop: str,
                   business_date: date, principal: int, penalty: int) -> Reduction:
    """The candidate program that reduces the total most (ties: the lowest id, compared as text); none when
    no program matches or every match would reduce nothing."""
    best: tuple[int, str] | None = None
    chosen = NO_REDUCTION
    for program in programs:
        if not program.covers(tax, tax_year, nop, business_date):
            continue
        discount, waived = program.reductions(principal, penalty)
        if discount + waived == 0:
            continue
        rank = (-(discount + waived), program.id)
        if best is None or rank < best:
            best, chosen = rank, Reduction(discount, waived, program.relief)
    return chosen


def check_programs(programs: tuple[ReliefProgram, ...]) -> None:
    """Programs together: ids unique (a payment names its program by id)."""
    seen: set[str] = set()
    for program in programs:
        if program.id in seen:
            raise ValueError(f"id: {program.id!r} is used by two programs")
        seen.add(program.id)


def active_on(programs: tuple[ReliefProgram, ...], business_date: date) -> tuple[ReliefProgram, ...]:
    return tuple(p for p in programs if p.open_on(business_date))


def describe(program: ReliefProgram) -> dict[str, object]:
    """A program as the audit log writes it: its configuration's keys."""
    return {"id": program.id, "name": program.name, "decree": program.decree, "from": program.starts.isoformat(),
            "to": program.ends.isoformat(), "taxes": sorted(t.lower() for t in program.taxes),
            "tax_years": program.years_text(), "kecamatan": sorted(program.kecamatan),
            "principal_discount": str(program.principal_discount), "penalty_waiver": str(program.penalty_waiver)}


def changes(before: tuple[ReliefProgram, ...], after: tuple[ReliefProgram, ...]) -> dict[str, list] | None:
    """What a reload changed in the programs (ids added, removed, changed, and the programs now in force), or
    None when nothing did."""
    old, new = {p.id: p for p in before}, {p.id: p for p in after}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(i for i in set(old) & set(new) if old[i] != new[i])
    if not (added or removed or changed):
        return None
    return {"added": added, "removed": removed, "changed": changed, "programs": [describe(p) for p in after]}
