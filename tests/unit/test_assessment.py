"""The bill-state ladder both inquiry and payment use (gateway.domain.assessment)."""
from datetime import date

import pytest

from gateway.domain.assessment import (
    Amount,
    Assessment,
    assess,
    bphtb_matches,
    mask_nik,
    tax_year_window,
)
from gateway.domain.codes import RC
from gateway.domain.penalty import DEFAULT_PBB_POLICY

PBB = {"tax": "PBB", "status": "unpaid", "principal": 150_000, "penalty": 0, "due_date": date(2026, 8, 31),
       "valid_until": None, "nop": "327501000100100010", "tax_year": 2026}
BPHTB = {"tax": "BPHTB", "status": "unpaid", "principal": 5_000_000, "penalty": 250_000, "due_date": None,
         "valid_until": date(2026, 11, 23), "nop": "327501000100100020", "tax_year": 2026}
DAY = date(2026, 11, 23)


def test_unpaid_pbb_owes_principal_and_penalty_of_the_months_started():
    assert assess(PBB, DAY, DAY, DEFAULT_PBB_POLICY) == Assessment(RC.APPROVED, Amount(150_000, 4_500, 154_500, 3))


def test_paid_is_88_with_nothing_due_whatever_else_holds():
    for bill in ({**PBB, "status": "paid"}, {**BPHTB, "status": "paid", "valid_until": date(2000, 1, 1)}):
        assert assess(bill, DAY, DAY, DEFAULT_PBB_POLICY) == \
            Assessment(RC.ALREADY_PAID, Amount(bill["principal"], 0, 0, 0))


@pytest.mark.parametrize("bill, day, rc", [
    ({**PBB, "status": "cancelled"}, DAY, RC.NOT_PAYABLE),
    (BPHTB, DAY, RC.APPROVED),                       # payable through its valid-until date
    (BPHTB, date(2026, 11, 24), RC.NOT_PAYABLE),
    ({**BPHTB, "status": "cancelled"}, DAY, RC.NOT_PAYABLE),
])
def test_not_payable_is_33(bill, day, rc):
    assert assess(bill, day, day, DEFAULT_PBB_POLICY).rc == rc


def test_bphtb_owes_its_imported_penalty():
    assert assess(BPHTB, DAY, DAY, DEFAULT_PBB_POLICY).amount == Amount(5_000_000, 250_000, 5_250_000, 0)


def test_window_and_cross_checks():
    assert tax_year_window(DAY) == (2021, 2026)
    assert bphtb_matches(BPHTB, None, None, "3275")
    assert bphtb_matches(BPHTB, "327501000100100020", 2026, "3275")
    assert not bphtb_matches(BPHTB, "327501000100100020", 2025, "3275")
    assert not bphtb_matches(BPHTB, "327501000100100010", None, "3275")
    assert not bphtb_matches({**BPHTB, "nop": "327601000100100020"}, "327601000100100020", None, "3275")
    assert mask_nik("3275012304560001") == "327501******0001" and mask_nik(None) is None
