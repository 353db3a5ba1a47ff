"""What a bill owes now and whether it may be paid: the bill-state ladder both inquiry and payment use.

Pure functions of a bill (any mapping with the bill's columns), a date and the penalty policy. The order of
the ladder is the contract's (spec/iso8583.md response codes): a bill with an active payment or imported as
paid → 88; cancelled, or a BPHTB registration past its valid-until date → 33; otherwise the amount due now.
The checks before it (the request's format → 30, the bank → 05, the region → 14, the business date → 90)
belong to the request, not to the bill, and are made by the service first.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .codes import RC
from .nop import in_region
from .penalty import PenaltyPolicy, pbb_penalty
from .relief import Relief, ReliefProgram, best_reduction

# Arrears and "other unpaid years" look at the current tax year and the five before it.
WINDOW_YEARS = 5


@dataclass(frozen=True)
class Amount:
    """What is due or was paid. ``principal`` and ``penalty`` are the amounts to pay, after any relief
    program's reduction (spec/domain.md "Relief programs"), so principal + penalty = total always holds; the
    reductions stand beside them, never as negative money."""

    principal: int
    penalty: int
    total: int
    months_late: int = 0
    discount: int = 0
    penalty_waived: int = 0
    relief: Relief | None = None

    @property
    def principal_gross(self) -> int:
        return self.principal + self.discount

    @property
    def penalty_gross(self) -> int:
        return self.penalty + self.penalty_waived


@dataclass(frozen=True)
class Assessment:
    """The bill's answer: RC 00 with what is due now, 88 with nothing due, or 33 (no amount)."""

    rc: RC
    amount: Amount | None


def assess(bill: Mapping[str, Any], business_date: date, paid_on: date, policy: PenaltyPolicy,
           relief: tuple[ReliefProgram, ...] = ()) -> Assessment:
    """The ladder: paid → 88, not payable → 33, else 00 with the amount due on ``paid_on`` (region-local),
    reduced by the best relief program of ``business_date``."""
    if bill["status"] == "paid":
        return Assessment(RC.ALREADY_PAID, nothing_due(bill))
    if not_payable(bill, business_date):
        return Assessment(RC.NOT_PAYABLE, None)
    return Assessment(RC.APPROVED, amount_due(bill, paid_on, policy, business_date, relief))


def amount_due(bill: Mapping[str, Any], paid_on: date, policy: PenaltyPolicy, business_date: date | None = None,
               relief: tuple[ReliefProgram, ...] = ()) -> Amount:
    """PBB: the principal plus the penalty for the months started since the due date (paid_on is the
    region-local calendar date). BPHTB: the penalty as imported. Then the relief program that reduces it most
    on ``business_date`` (a window follows business dates, the penalty calendar dates)."""
    principal = bill["principal"]
    if bill["tax"] == "PBB":
        penalty = pbb_penalty(principal, bill["due_date"], paid_on, policy)
        gross, months = penalty.amount, penalty.months_late
    else:
        gross, months = bill["penalty"], 0
    if not relief:
        return Amount(principal, gross, principal + gross, months)
    cut = best_reduction(relief, tax=bill["tax"], tax_year=bill["tax_year"], nop=bill["nop"] or "",
                         business_date=business_date or paid_on, principal=principal, penalty=gross)
    due_principal, due_penalty = principal - cut.discount, gross - cut.penalty_waived
    return Amount(due_principal, due_penalty, due_principal + due_penalty, months, cut.discount,
                  cut.penalty_waived, cut.relief)


def nothing_due(bill: Mapping[str, Any]) -> Amount:
    """How a paid or cancelled bill is shown: its principal, nothing due (spec/iso8583.md field 62)."""
    return Amount(bill["principal"], 0, 0, 0)


def not_payable(bill: Mapping[str, Any], business_date: date) -> bool:
    """Cancelled, or a BPHTB registration past its valid-until date (payable through that date)."""
    if bill["status"] == "cancelled":
        return True
    return bill["tax"] == "BPHTB" and bill["valid_until"] < business_date


def tax_year_window(business_date: date) -> tuple[int, int]:
    """The current tax year (of the business date) and the five before it."""
    return business_date.year - WINDOW_YEARS, business_date.year


def bphtb_matches(bill: Mapping[str, Any], nop: str | None, year: int | None, region_code: str) -> bool:
    """The optional NOP and tax year of a BPHTB request must agree with the registration (else RC 14)."""
    if nop is not None and (nop != bill["nop"] or not in_region(nop, region_code)):
        return False
    return year is None or year == bill["tax_year"]


def mask_nik(nik: str | None) -> str | None:
    """First 6 and last 4 digits of a NIK, the rest hidden (spec/iso8583.md field 62, BPHTB slot 5)."""
    if not nik:
        return None
    return nik[:6] + "******" + nik[-4:]
