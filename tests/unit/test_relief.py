"""Relief programs: which program applies to a bill and by how much (gateway.domain.relief, spec/domain.md
"Relief programs"), and how amount_due / assess carry the reduction. Pure: no database."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.assessment import Amount, Assessment, amount_due, assess
from gateway.domain.business_day import business_date
from gateway.domain.codes import RC
from gateway.domain.penalty import DEFAULT_PBB_POLICY
from gateway.domain.relief import (
    NO_REDUCTION,
    Reduction,
    Relief,
    ReliefProgram,
    active_on,
    best_reduction,
    check_programs,
)

JAKARTA = ZoneInfo("Asia/Jakarta")
CUTOFF = time(23, 0)
UTC = timezone.utc

NOP_010 = "327501000100100010"  # kecamatan (NOP digits 5-7) "010"
NOP_020 = "327502000100100010"  # kecamatan "020"
DAY = date(2026, 11, 23)

# The worked example's bill: due 2026-08-31, paid 2026-11-23 → 3 months started, 1% a month.
PBB = {"tax": "PBB", "status": "unpaid", "principal": 1_000_000, "penalty": 0, "due_date": date(2026, 8, 31),
       "valid_until": None, "nop": NOP_010, "tax_year": 2026}
BPHTB = {"tax": "BPHTB", "status": "unpaid", "principal": 5_000_000, "penalty": 250_000, "due_date": None,
         "valid_until": date(2026, 11, 30), "nop": "327501000100100020", "tax_year": 2026}


def program(id: str = "P1", *, discount: str = "0", waiver: str = "0", starts: date = date(2026, 1, 1),
            ends: date = date(2026, 12, 31), taxes: tuple[str, ...] = ("PBB", "BPHTB"), **more: Any) -> ReliefProgram:
    """A valid program open all of 2026 for both taxes and every year and kecamatan, unless told otherwise."""
    return ReliefProgram(id=id, name=f"Program {id}", decree=f"Perwal 1/2026 ({id})", starts=starts, ends=ends,
                         taxes=frozenset(taxes), principal_discount=Decimal(discount), penalty_waiver=Decimal(waiver),
                         **more)


def reduce(programs: tuple[ReliefProgram, ...] | ReliefProgram, *, principal: int = 1_000_000, penalty: int = 0,
           tax: str = "PBB", tax_year: int = 2026, nop: str = NOP_010, on: date = DAY) -> Reduction:
    if isinstance(programs, ReliefProgram):
        programs = (programs,)
    return best_reduction(programs, tax=tax, tax_year=tax_year, nop=nop, business_date=on, principal=principal,
                          penalty=penalty)


def applied(p: ReliefProgram | None) -> Relief | None:
    return None if p is None else p.relief


def jakarta(y: int, m: int, d: int, hh: int, mm: int) -> date:
    """The business date of a message received at that Jakarta wall time (computed from UTC, as the gateway does)."""
    now_utc = datetime(y, m, d, hh, mm, tzinfo=JAKARTA).astimezone(UTC)
    return business_date(now_utc, JAKARTA, CUTOFF)


# --- the worked example and the arithmetic -------------------------------------------------------------------


def test_worked_example_through_amount_due():
    p = program("EARLY", discount="10", waiver="100")
    assert amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, (p,)) == Amount(
        principal=900_000, penalty=0, total=900_000, months_late=3, discount=100_000, penalty_waived=30_000,
        relief=Relief("EARLY", "Program EARLY", "Perwal 1/2026 (EARLY)"))


def test_worked_example_gross_parts_and_without_programs():
    a = amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, (program("EARLY", discount="10", waiver="100"),))
    assert (a.principal_gross, a.penalty_gross) == (1_000_000, 30_000)
    assert a.principal + a.penalty == a.total == 1_000_000 - 100_000 + 30_000 - 30_000
    assert amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, ()) == Amount(1_000_000, 30_000, 1_030_000, 3)


def test_business_date_defaults_to_paid_on():
    p = program("EARLY", discount="10", ends=date(2026, 11, 23))
    assert amount_due(PBB, DAY, DEFAULT_PBB_POLICY, None, (p,)).discount == 100_000
    assert amount_due(PBB, DAY + timedelta(days=1), DEFAULT_PBB_POLICY, None, (p,)).relief is None


def test_reductions_round_half_up_each_part_on_its_own():
    p = program(discount="10", waiver="10")
    assert p.reductions(5, 15) == (1, 2)  # 0.5 → 1 and 1.5 → 2 (together 2.0 would be 2)
    assert p.reductions(4, 14) == (0, 1)  # 0.4 → 0 and 1.4 → 1
    assert reduce(p, principal=5, penalty=15) == Reduction(1, 2, p.relief)


def test_parts_below_a_half_each_do_not_add_up_to_a_reduction():
    # 0.49 + 0.49 would round to 1 together, but each part rounds to 0: the program reduces nothing.
    assert reduce(program(discount="1", waiver="1"), principal=49, penalty=49) == NO_REDUCTION


def test_decimal_percentages():
    p = program(discount="12.5", waiver="33.33")
    assert p.reductions(1_000_000, 30_000) == (125_000, 9_999)
    assert p.reductions(1_001, 0) == (125, 0)  # 125.125
    assert p.reductions(1_004, 0) == (126, 0)  # 125.5 → 126
    assert reduce(p, principal=1_004, penalty=30_000) == Reduction(126, 9_999, p.relief)


def test_full_penalty_waiver_only():
    p = program("AMNESTY", waiver="100")
    a = amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, (p,))
    assert a == Amount(1_000_000, 0, 1_000_000, 3, 0, 30_000, p.relief)


def test_waiver_only_program_does_not_apply_to_a_bill_without_penalty():
    # Paid on time: no penalty, so a penalty waiver reduces nothing and the bill shows no program.
    on_time = date(2026, 8, 31)
    a = amount_due(PBB, on_time, DEFAULT_PBB_POLICY, on_time, (program("AMNESTY", waiver="100"),))
    assert a == Amount(1_000_000, 0, 1_000_000, 0) and a.relief is None


def test_zero_percent_program_does_not_apply():
    p = program("NIL", discount="0", waiver="0")
    assert reduce(p, penalty=30_000) == NO_REDUCTION
    assert amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, (p,)) == Amount(1_000_000, 30_000, 1_030_000, 3, 0, 0, None)


def test_program_whose_reduction_rounds_to_zero_does_not_apply():
    p = program("TINY", discount="0.01")
    assert reduce(p, principal=4_999, penalty=0) == NO_REDUCTION  # 0.4999 → 0
    assert reduce(p, principal=5_000, penalty=0) == Reduction(1, 0, p.relief)  # 0.5 → 1
    # ...and a zero-reduction program does not block a smaller real one either.
    small = program("ZZZ", discount="0.02")
    assert reduce((p, small), principal=4_999) == Reduction(1, 0, small.relief)


# --- which program applies -----------------------------------------------------------------------------------


def test_bigger_reduction_wins_even_with_a_smaller_percentage_of_one_part():
    discount_20 = program("D20", discount="20")
    mixed = program("MIX", discount="10", waiver="100")
    # Penalty 480.000: MIX takes 100.000 + 480.000, more than D20's 200.000 although its discount is smaller.
    assert reduce((discount_20, mixed), penalty=480_000) == Reduction(100_000, 480_000, mixed.relief)
    # Penalty 30.000: D20's 200.000 beats MIX's 130.000 although MIX waives more of the penalty.
    assert reduce((discount_20, mixed), penalty=30_000) == Reduction(200_000, 0, discount_20.relief)
    assert reduce((mixed, discount_20), penalty=30_000) == Reduction(200_000, 0, discount_20.relief)


@pytest.mark.parametrize("ids, winner", [
    (("B10", "A9"), "A9"),
    (("A9", "B10"), "A9"),
    (("9", "10"), "10"),     # compared as text, not as numbers
    (("a", "B"), "B"),       # and case-sensitively, as text ("B" < "a")
])
def test_tie_goes_to_the_lowest_id_as_text(ids, winner):
    # 10% of the principal and 100% of the penalty vs 13% of the principal: 130.000 each.
    first = program(ids[0], discount="10", waiver="100")
    second = program(ids[1], discount="13")
    chosen = reduce((first, second), penalty=30_000)
    assert chosen.relief is not None and chosen.relief.id == winner
    assert chosen.discount + chosen.penalty_waived == 130_000


def test_at_most_one_program_per_bill():
    a, b = program("A", discount="10"), program("B", waiver="100")
    # Both match, and together they would take 130.000; only the bigger one (A, 100.000) applies.
    assert reduce((a, b), penalty=30_000) == Reduction(100_000, 0, a.relief)


ARREARS = (
    program("ARR75", discount="75", max_year=2010),
    program("ARR50", discount="50", min_year=2011, max_year=2015),
    program("ARR25", discount="25", min_year=2016, max_year=2020),
    program("ARR10", discount="10", min_year=2021, max_year=2025),
)


@pytest.mark.parametrize("tax_year, discount, winner", [
    (1995, 750_000, "ARR75"), (2010, 750_000, "ARR75"),
    (2011, 500_000, "ARR50"), (2015, 500_000, "ARR50"),
    (2016, 250_000, "ARR25"), (2020, 250_000, "ARR25"),
    (2021, 100_000, "ARR10"), (2025, 100_000, "ARR10"),
    (2026, 0, None),
])
def test_tax_year_bands(tax_year, discount, winner):
    chosen = reduce(ARREARS, tax_year=tax_year)
    assert chosen.discount == discount
    assert (chosen.relief.id if chosen.relief else None) == winner


def test_tax_years_absent_means_every_year():
    p = program(discount="10")
    assert p.years_text() == "all"
    assert all(reduce(p, tax_year=year).discount == 100_000 for year in (1900, 1990, 2026, 2030))


def test_min_only_and_max_only():
    from_2020, to_2020 = program("MIN", discount="10", min_year=2020), program("MAX", discount="10", max_year=2020)
    assert [reduce(from_2020, tax_year=y).discount for y in (2019, 2020, 2021)] == [0, 100_000, 100_000]
    assert [reduce(to_2020, tax_year=y).discount for y in (2019, 2020, 2021)] == [100_000, 100_000, 0]
    assert (from_2020.years_text(), to_2020.years_text()) == (">=2020", "<=2020")
    assert program(min_year=2010, max_year=2020).years_text() == "2010-2020"


def test_min_equal_to_max_is_one_year():
    p = program(discount="10", min_year=2020, max_year=2020)
    assert [reduce(p, tax_year=y).discount for y in (2019, 2020, 2021)] == [0, 100_000, 0]


def test_current_year_is_the_business_dates_year():
    p = program("CUR", discount="15", current_year=True, starts=date(2026, 12, 1), ends=date(2027, 1, 31))
    assert p.years_text() == "current"
    assert reduce(p, tax_year=2026, on=date(2026, 12, 31)).discount == 150_000
    assert reduce(p, tax_year=2025, on=date(2026, 12, 31)) == NO_REDUCTION
    assert reduce(p, tax_year=2026, on=date(2027, 1, 1)) == NO_REDUCTION
    assert reduce(p, tax_year=2027, on=date(2027, 1, 1)).discount == 150_000


def test_current_year_follows_the_business_date_across_the_cutoff():
    p = program("CUR", discount="15", current_year=True, starts=date(2026, 12, 1), ends=date(2027, 1, 31))
    new_year = jakarta(2026, 12, 31, 23, 0)  # after the cut-off: business date 2027-01-01
    assert new_year == date(2027, 1, 1)
    assert reduce(p, tax_year=2026, on=new_year) == NO_REDUCTION
    assert reduce(p, tax_year=2027, on=new_year).discount == 150_000


def test_kecamatan_filter_uses_nop_digits_5_to_7():
    assert NOP_010[4:7] == "010" and NOP_020[4:7] == "020"
    p = program("KEC", discount="10", kecamatan=frozenset({"010", "030"}))
    assert reduce(p, nop=NOP_010).discount == 100_000
    assert reduce(p, nop="327503000100100010").discount == 100_000
    assert reduce(p, nop=NOP_020) == NO_REDUCTION
    # Without kecamatan codes every kecamatan matches.
    assert reduce(program(discount="10"), nop=NOP_020).discount == 100_000


def test_kecamatan_filter_through_amount_due():
    p = program("KEC", discount="10", kecamatan=frozenset({"020"}))
    assert amount_due(PBB, DAY, DEFAULT_PBB_POLICY, DAY, (p,)).relief is None
    assert amount_due({**PBB, "nop": NOP_020}, DAY, DEFAULT_PBB_POLICY, DAY, (p,)).discount == 100_000


def test_tax_filter():
    pbb_only, bphtb_only = program("PBB", discount="10", taxes=("PBB",)), program("BPHTB", discount="5", taxes=("BPHTB",))
    assert reduce(pbb_only, tax="BPHTB") == NO_REDUCTION
    assert reduce(bphtb_only, tax="PBB") == NO_REDUCTION
    assert reduce((pbb_only, bphtb_only), tax="PBB") == Reduction(100_000, 0, pbb_only.relief)
    assert reduce((pbb_only, bphtb_only), tax="BPHTB") == Reduction(50_000, 0, bphtb_only.relief)
    assert assess(BPHTB, DAY, DAY, DEFAULT_PBB_POLICY, (pbb_only,)).amount == Amount(5_000_000, 250_000, 5_250_000, 0)


def test_bphtb_with_imported_penalty():
    p = program("BP", discount="20", waiver="50", taxes=("BPHTB",))
    assert assess(BPHTB, DAY, DAY, DEFAULT_PBB_POLICY, (p,)) == Assessment(
        RC.APPROVED, Amount(4_000_000, 125_000, 4_125_000, 0, 1_000_000, 125_000, p.relief))


def test_bphtb_without_nop_gets_programs_without_kecamatan_only():
    everywhere, one_kecamatan = program("ALL", waiver="100"), program("K", waiver="100", kecamatan=frozenset({"010"}))
    bill = {**BPHTB, "nop": None}
    assert amount_due(bill, DAY, DEFAULT_PBB_POLICY, DAY, (one_kecamatan,)).relief is None
    assert amount_due(bill, DAY, DEFAULT_PBB_POLICY, DAY, (everywhere,)).penalty_waived == 250_000


# --- paid and cancelled bills --------------------------------------------------------------------------------


def test_paid_bill_gets_no_reduction():
    p = program("EARLY", discount="10", waiver="100")
    for bill in ({**PBB, "status": "paid"}, {**BPHTB, "status": "paid"}):
        result = assess(bill, DAY, DAY, DEFAULT_PBB_POLICY, (p,))
        assert result == Assessment(RC.ALREADY_PAID, Amount(bill["principal"], 0, 0, 0))
        assert result.amount is not None and result.amount.relief is None and result.amount.discount == 0


@pytest.mark.parametrize("bill", [
    {**PBB, "status": "cancelled"},
    {**BPHTB, "status": "cancelled"},
    {**BPHTB, "valid_until": date(2026, 11, 22)},  # past its valid-until date
])
def test_not_payable_bill_gets_no_amount(bill):
    assert assess(bill, DAY, DAY, DEFAULT_PBB_POLICY, (program("EARLY", discount="10", waiver="100"),)) == \
        Assessment(RC.NOT_PAYABLE, None)


def test_unpaid_bill_through_assess():
    p = program("EARLY", discount="10", waiver="100")
    assert assess(PBB, DAY, DAY, DEFAULT_PBB_POLICY, (p,)) == \
        Assessment(RC.APPROVED, Amount(900_000, 0, 900_000, 3, 100_000, 30_000, p.relief))


# --- the window: business dates, inclusive, ending at the cut-off of `to` -----------------------------------

MAY_JUNE = program("MJ", discount="10", starts=date(2026, 5, 1), ends=date(2026, 6, 30))


@pytest.mark.parametrize("on, discount", [
    (date(2026, 4, 30), 0),
    (date(2026, 5, 1), 100_000),
    (date(2026, 6, 15), 100_000),
    (date(2026, 6, 30), 100_000),
    (date(2026, 7, 1), 0),
])
def test_window_from_and_to_are_included(on, discount):
    assert reduce(MAY_JUNE, on=on).discount == discount
    assert (MAY_JUNE in active_on((MAY_JUNE,), on)) == (discount > 0)


@pytest.mark.parametrize("wall, inside", [
    ((2026, 4, 30, 22, 59), False),
    ((2026, 4, 30, 23, 0), True),    # after the cut-off: business date 2026-05-01
    ((2026, 5, 1, 0, 0), True),
    ((2026, 6, 30, 22, 59), True),
    ((2026, 6, 30, 23, 0), False),   # the window ended at the cut-off of its `to` date
    ((2026, 6, 30, 23, 59), False),
])
def test_window_follows_the_cut_off(wall, inside):
    on = jakarta(*wall)
    assert reduce(MAY_JUNE, on=on).discount == (100_000 if inside else 0)


def test_window_and_penalty_use_different_dates_at_the_cut_off():
    # 2026-06-30 23:30 in Jakarta: the penalty counts calendar date 06-30, the window business date 07-01.
    bill = {**PBB, "due_date": date(2026, 3, 31)}
    on = jakarta(2026, 6, 30, 23, 30)
    assert on == date(2026, 7, 1)
    late = amount_due(bill, date(2026, 6, 30), DEFAULT_PBB_POLICY, on, (MAY_JUNE,))
    assert late == Amount(1_000_000, 30_000, 1_030_000, 3)
    in_time = amount_due(bill, date(2026, 6, 30), DEFAULT_PBB_POLICY, jakarta(2026, 6, 30, 22, 59), (MAY_JUNE,))
    assert in_time == Amount(900_000, 30_000, 930_000, 3, 100_000, 0, MAY_JUNE.relief)


def test_active_on_keeps_the_programs_whose_window_holds_the_date():
    april = program("APR", starts=date(2026, 4, 1), ends=date(2026, 4, 30))
    programs = (april, MAY_JUNE)
    assert active_on(programs, date(2026, 4, 30)) == (april,)
    assert active_on(programs, date(2026, 5, 1)) == (MAY_JUNE,)
    assert active_on(programs, date(2026, 7, 1)) == ()


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, changes", [
    ("id", {"id": ""}),
    ("id", {"id": "has space"}),
    ("id", {"id": "-lead"}),
    ("id", {"id": "a/b"}),
    ("id", {"id": "x" * 33}),
    ("id", {"id": "A1\n"}),
    ("name", {"name": ""}),
    ("name", {"name": "   "}),
    ("decree", {"decree": ""}),
    ("decree", {"decree": " "}),
    ("from", {"starts": date(2026, 7, 1), "ends": date(2026, 6, 30)}),
    ("taxes", {"taxes": frozenset()}),
    ("taxes", {"taxes": frozenset({"PPN"})}),
    ("taxes", {"taxes": frozenset({"PBB", "PPN"})}),
    ("principal_discount", {"principal_discount": Decimal("-0.01")}),
    ("principal_discount", {"principal_discount": Decimal("100.01")}),
    ("principal_discount", {"principal_discount": Decimal("NaN")}),
    ("principal_discount", {"principal_discount": Decimal("sNaN")}),
    ("principal_discount", {"principal_discount": Decimal("Infinity")}),
    ("principal_discount", {"principal_discount": 10.0}),
    ("penalty_waiver", {"penalty_waiver": Decimal("-1")}),
    ("penalty_waiver", {"penalty_waiver": Decimal("101")}),
    ("penalty_waiver", {"penalty_waiver": Decimal("NaN")}),
    ("tax_years", {"current_year": True, "min_year": 2020}),
    ("tax_years", {"current_year": True, "max_year": 2020}),
    ("tax_years", {"min_year": 2021, "max_year": 2020}),
    ("tax_years", {"min_year": 0}),
    ("kecamatan", {"kecamatan": frozenset({"01"})}),
    ("kecamatan", {"kecamatan": frozenset({"0100"})}),
    ("kecamatan", {"kecamatan": frozenset({"01a"})}),
    ("kecamatan", {"kecamatan": frozenset({"٠١٠"})}),  # Arabic-Indic digits are not a code
    ("kecamatan", {"kecamatan": frozenset({"010", ""})}),
])
def test_invalid_program_names_the_key(key, changes):
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(program("OK", discount="10"), **changes)
    assert str(raised.value).startswith(key + ":"), str(raised.value)


@pytest.mark.parametrize("changes", [
    {"id": "x" * 32},
    {"id": "Amnesti-2026_v1.2"},
    {"principal_discount": Decimal("0"), "penalty_waiver": Decimal("100")},
    {"principal_discount": Decimal("100"), "penalty_waiver": Decimal("0.01")},
    {"starts": date(2026, 6, 30), "ends": date(2026, 6, 30)},
    {"min_year": 2020, "max_year": 2020},
    {"current_year": True},
    {"taxes": frozenset({"BPHTB"})},
    {"kecamatan": frozenset({"000", "999"})},
])
def test_valid_edges_are_accepted(changes):
    dataclasses.replace(program("OK"), **changes)


def test_duplicate_ids_are_refused():
    check_programs((program("A"), program("B")))
    check_programs(())
    with pytest.raises(ValueError) as raised:
        check_programs((program("A"), program("B"), program("A", discount="5")))
    assert str(raised.value).startswith("id:") and "'A'" in str(raised.value)


# --- properties ----------------------------------------------------------------------------------------------

# 0..100 with up to 2 decimals; round values often, so that programs tie and reduce whole parts.
percents = st.sampled_from(["0", "10", "12.5", "50", "100"]).map(Decimal) | \
    st.integers(0, 10_000).map(lambda n: Decimal(n).scaleb(-2))
principals = st.integers(0, 10**12) | st.sampled_from([0, 1, 5, 1_000_000])
penalties = st.integers(0, 10**11) | st.sampled_from([0, 1, 15, 30_000])
BASE = date(2026, 6, 15)
days = st.integers(-40, 40).map(lambda n: BASE + timedelta(days=n))
ids = st.builds(str.__add__, st.text("AB9a", min_size=1, max_size=1), st.text("AB9a0._-", max_size=3))


@st.composite
def programs(draw: st.DrawFn) -> ReliefProgram:
    """Random valid programs, most of them covering a good part of the random bills below."""
    starts, ends = sorted((draw(days), draw(days)))
    years = draw(st.sampled_from(["all", "all", "current", "band"]))
    low = draw(st.none() | st.integers(2015, 2026))
    high = draw(st.none() | st.integers(low or 2015, 2026))
    return ReliefProgram(
        id=draw(ids), name="Relief", decree="Perwal 1/2026", starts=starts, ends=ends,
        taxes=frozenset(draw(st.sets(st.sampled_from(["PBB", "BPHTB"]), min_size=1))),
        principal_discount=draw(percents), penalty_waiver=draw(percents),
        min_year=low if years == "band" else None, max_year=high if years == "band" else None,
        current_year=years == "current",
        kecamatan=draw(st.just(frozenset()) | st.frozensets(st.sampled_from(["010", "020", "030"]), max_size=2)),
    )


program_lists = st.lists(programs(), max_size=6, unique_by=lambda p: p.id)
bills = st.fixed_dictionaries({
    "tax": st.sampled_from(["PBB", "BPHTB"]),
    "tax_year": st.integers(2020, 2027),
    "nop": st.sampled_from([NOP_010, NOP_020, "327503000100100010", "327504000100100010"]),
    "business_date": st.integers(-15, 15).map(lambda n: BASE + timedelta(days=n)),
    "principal": principals,
    "penalty": penalties,
})


@given(p=programs(), principal=principals, penalty=penalties)
def test_one_programs_reductions_stay_within_each_part(p, principal, penalty):
    discount, waived = p.reductions(principal, penalty)
    assert 0 <= discount <= principal and 0 <= waived <= penalty
    assert 0 <= principal - discount + penalty - waived <= principal + penalty


@given(candidates=program_lists, bill=bills)
def test_best_reduction_is_the_best_single_candidate(candidates, bill):
    chosen = best_reduction(tuple(candidates), **bill)
    gross = bill["principal"] + bill["penalty"]
    total = gross - chosen.discount - chosen.penalty_waived
    assert 0 <= chosen.discount <= bill["principal"] and 0 <= chosen.penalty_waived <= bill["penalty"]
    assert 0 <= total <= gross
    useful = []  # the candidates that would reduce something on their own
    for p in candidates:
        discount, waived = p.reductions(bill["principal"], bill["penalty"])
        alone = best_reduction((p,), **bill)
        if p.covers(bill["tax"], bill["tax_year"], bill["nop"], bill["business_date"]) and discount + waived > 0:
            assert alone == Reduction(discount, waived, p.relief)
            useful.append(p)
        else:
            assert alone == NO_REDUCTION
        assert total <= gross - alone.discount - alone.penalty_waived
    if not useful:
        assert chosen == NO_REDUCTION
    else:
        winner = min(useful, key=lambda p: (-sum(p.reductions(bill["principal"], bill["penalty"])), p.id))
        assert chosen == best_reduction((winner,), **bill) and total < gross
    # The order of the configuration does not matter.
    assert best_reduction(tuple(reversed(candidates)), **bill) == chosen


@given(candidates=program_lists, principal=principals, penalty=penalties, tax_year=st.integers(2020, 2027),
       on=days)
def test_amount_due_keeps_principal_plus_penalty_equal_to_total(candidates, principal, penalty, tax_year, on):
    bill = {**BPHTB, "principal": principal, "penalty": penalty, "tax_year": tax_year, "valid_until": on}
    a = amount_due(bill, on, DEFAULT_PBB_POLICY, on, tuple(candidates))
    assert a.principal + a.penalty == a.total
    assert (a.principal_gross, a.penalty_gross) == (principal, penalty)
    assert 0 <= a.principal <= principal and 0 <= a.penalty <= penalty
    assert 0 <= a.total <= principal + penalty
    assert Reduction(a.discount, a.penalty_waived, a.relief) == best_reduction(
        tuple(candidates), tax="BPHTB", tax_year=tax_year, nop=bill["nop"], business_date=on, principal=principal,
        penalty=penalty)
