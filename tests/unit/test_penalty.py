import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import DEFAULT_PBB_POLICY, Penalty, PenaltyPeriod, PenaltyPolicy, months_late, pbb_penalty

P = 1_000_000  # principal of the worked examples


def penalty(due, paid_on, principal=P, policy=DEFAULT_PBB_POLICY):
    return pbb_penalty(principal, due, paid_on, policy)


# --- the worked examples of domain.md ------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "paid_on", "months", "amount"),
    [
        (date(2026, 8, 31), date(2026, 8, 31), 0, 0),
        (date(2026, 8, 31), date(2026, 9, 1), 1, 10_000),
        (date(2026, 8, 31), date(2026, 10, 1), 2, 20_000),
        (date(2022, 8, 31), date(2026, 11, 23), 24, 480_000),  # 2 %, capped
        (date(2026, 1, 31), date(2026, 2, 28), 1, 10_000),
        (date(2026, 1, 31), date(2026, 3, 1), 2, 20_000),
    ],
)
def test_worked_examples(due, paid_on, months, amount):
    assert penalty(due, paid_on) == Penalty(months_late=months, amount=amount)


# --- months_late ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "paid_on", "months"),
    [
        (date(2026, 8, 31), date(2026, 8, 1), 0),  # early
        (date(2026, 8, 31), date(2025, 12, 31), 0),  # a year early
        (date(2026, 8, 15), date(2026, 8, 16), 1),  # the day after the due date starts month 1
        (date(2026, 8, 15), date(2026, 9, 15), 1),  # same day number: still month 1
        (date(2026, 8, 15), date(2026, 9, 16), 2),  # the day after: month 2
        (date(2026, 8, 31), date(2026, 9, 30), 1),  # shorter month, last day
        (date(2026, 1, 31), date(2026, 2, 28), 1),
        (date(2026, 1, 31), date(2026, 3, 1), 2),
        (date(2028, 1, 31), date(2028, 2, 29), 1),  # leap February
        (date(2028, 1, 30), date(2028, 2, 29), 1),
        (date(2026, 2, 28), date(2026, 3, 28), 1),  # due end of February
        (date(2026, 2, 28), date(2026, 3, 29), 2),  # ... a day number February does not reach
        (date(2026, 2, 28), date(2026, 3, 31), 2),
        (date(2026, 4, 30), date(2026, 5, 31), 2),
        (date(2026, 12, 31), date(2027, 1, 1), 1),  # over the year end
        (date(2026, 12, 31), date(2027, 1, 31), 1),
        (date(2026, 12, 31), date(2027, 2, 1), 2),
        (date(2026, 9, 30), date(2026, 10, 31), 2),
    ],
)
def test_months_late(due, paid_on, months):
    assert months_late(due, paid_on, 24) == months


def test_months_late_cap():
    due = date(2020, 8, 31)
    assert months_late(due, date(2022, 8, 31), 24) == 24  # exactly 24 started months
    assert months_late(due, date(2022, 8, 30), 24) == 24
    assert months_late(due, date(2022, 8, 29), 100) == 24
    assert months_late(due, date(2022, 9, 1), 100) == 25
    assert months_late(due, date(2022, 9, 1), 24) == 24
    assert months_late(due, date(2040, 1, 1), 24) == 24
    assert months_late(due, date(2040, 1, 1), 0) == 0
    assert months_late(due, date(2020, 9, 1), 0) == 0


@pytest.mark.parametrize("bad", [-1, True, 2.0, None])
def test_months_late_refuses_bad_cap(bad):
    with pytest.raises(ValueError):
        months_late(date(2026, 1, 1), date(2026, 2, 1), bad)


def reference_months_late(due, paid_on, max_months):
    # Independent definition: the number of days d in (due, paid_on] that start a penalty month,
    # where a month starts on due + 1 day and then on the day after each later "same day number"
    # (clipped to the month's last day). Counting by walking the calendar.
    if paid_on <= due:
        return 0
    starts = 0
    y, m = due.year, due.month
    while True:
        # the k-th month (k >= 1) starts the day after due's day number in month (y, m) + k - 1
        last = (date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)).day
        # clipped: due 01-31 -> the February anchor is 02-28, so month 2 starts 03-01
        start = date(y, m, min(due.day, last)) + timedelta(days=1)
        if start > paid_on:
            break
        starts += 1
        y, m = y + m // 12, m % 12 + 1
    return min(starts, max_months)


dates = st.dates(date(2015, 1, 1), date(2035, 12, 31))


@given(dates, dates, st.integers(0, 40))
def test_months_late_matches_calendar_walk(due, paid_on, cap):
    assert months_late(due, paid_on, cap) == reference_months_late(due, paid_on, cap)


@given(dates, dates, st.integers(1, 400), st.integers(0, 40))
def test_months_late_is_monotone_in_paid_on(due, paid_on, days, cap):
    assert months_late(due, paid_on, cap) <= months_late(due, paid_on + timedelta(days=days), cap)


@given(dates, dates, st.integers(0, 40))
def test_months_late_bounds(due, paid_on, cap):
    m = months_late(due, paid_on, cap)
    assert 0 <= m <= cap
    if paid_on <= due:
        assert m == 0
    elif cap >= 1:
        assert m >= 1  # a started month counts from the first day after the due date


@given(dates, st.integers(1, 30), st.integers(0, 40))
def test_months_late_steps_by_at_most_one_per_day(due, offset, cap):
    paid_on = due + timedelta(days=offset * 13)
    assert months_late(due, paid_on + timedelta(days=1), cap) - months_late(due, paid_on, cap) in (0, 1)


# --- policy --------------------------------------------------------------------------------------


def test_default_policy_boundary():
    old = DEFAULT_PBB_POLICY.period_for(date(2023, 12, 31))
    new = DEFAULT_PBB_POLICY.period_for(date(2024, 1, 1))
    assert (old.rate_per_month, old.max_months) == (Decimal("0.02"), 24)
    assert (new.rate_per_month, new.max_months) == (Decimal("0.01"), 24)
    assert DEFAULT_PBB_POLICY.period_for(date(1990, 1, 1)) is old
    assert DEFAULT_PBB_POLICY.period_for(date(2100, 1, 1)) is new


def test_rate_follows_due_date_not_payment_date():
    # due 2023-12-31 (2 %) and 2024-01-01 (1 %), both paid on the same day, 3 months late
    assert penalty(date(2023, 12, 31), date(2024, 3, 15)) == Penalty(3, 60_000)
    assert penalty(date(2024, 1, 1), date(2024, 3, 15)) == Penalty(3, 30_000)


def test_both_periods_capped_at_24():
    assert penalty(date(2020, 5, 1), date(2030, 1, 1)) == Penalty(24, 480_000)
    assert penalty(date(2024, 5, 1), date(2030, 1, 1)) == Penalty(24, 240_000)


@given(st.dates(date(1990, 1, 1), date(2060, 12, 31)))
def test_default_policy_covers_everything_once(due):
    covering = [p for p in DEFAULT_PBB_POLICY.periods if p.covers(due)]
    assert covering == [DEFAULT_PBB_POLICY.period_for(due)]
    assert covering[0].rate_per_month == (Decimal("0.02") if due < date(2024, 1, 1) else Decimal("0.01"))


def test_period_covers_bounds():
    p = PenaltyPeriod(Decimal("0.01"), 24, due_from=date(2024, 1, 1), due_before=date(2025, 1, 1))
    assert not p.covers(date(2023, 12, 31))
    assert p.covers(date(2024, 1, 1))  # from: inclusive
    assert p.covers(date(2024, 12, 31))
    assert not p.covers(date(2025, 1, 1))  # before: exclusive
    assert PenaltyPeriod(Decimal("0.01"), 24).covers(date.min)
    assert PenaltyPeriod(Decimal("0.01"), 24).covers(date.max)


def test_single_open_period_policy():
    policy = PenaltyPolicy((PenaltyPeriod(Decimal("0.015"), 12),))
    assert penalty(date(2026, 1, 10), date(2026, 3, 11), policy=policy) == Penalty(3, 45_000)


def test_three_period_policy_in_any_order_and_from_a_list():
    a = PenaltyPeriod(Decimal("0.02"), 24, due_before=date(2020, 1, 1))
    b = PenaltyPeriod(Decimal("0.015"), 18, due_from=date(2020, 1, 1), due_before=date(2024, 1, 1))
    c = PenaltyPeriod(Decimal("0.01"), 12, due_from=date(2024, 1, 1))
    policy = PenaltyPolicy([c, a, b])
    assert isinstance(policy.periods, tuple)
    assert policy.period_for(date(2019, 12, 31)) is a
    assert policy.period_for(date(2020, 1, 1)) is b
    assert policy.period_for(date(2023, 12, 31)) is b
    assert policy.period_for(date(2024, 1, 1)) is c


def test_policy_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PBB_POLICY.periods = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PBB_POLICY.periods[0].rate_per_month = Decimal("0.5")


D = date(2024, 1, 1)
R = Decimal("0.01")


@pytest.mark.parametrize(
    ("periods", "words"),
    [
        ((), "at least one"),
        ((PenaltyPeriod(Decimal("-0.01"), 24),), "rate"),
        ((PenaltyPeriod(Decimal("1.01"), 24),), "rate"),
        ((PenaltyPeriod(0.01, 24),), "rate"),  # float, not Decimal
        ((PenaltyPeriod(Decimal("NaN"), 24),), "rate"),
        ((PenaltyPeriod(R, -1),), "max_months"),
        ((PenaltyPeriod(R, True),), "max_months"),
        ((PenaltyPeriod(R, 24, due_from=D, due_before=D),), "empty"),
        ((PenaltyPeriod(R, 24, due_from=D),), "before 2024-01-01"),  # nothing before
        ((PenaltyPeriod(R, 24, due_before=D),), "from 2024-01-01"),  # nothing after
        ((PenaltyPeriod(R, 24), PenaltyPeriod(R, 24)), "overlap"),
        ((PenaltyPeriod(R, 24), PenaltyPeriod(R, 24, due_from=D)), "overlap"),
        ((PenaltyPeriod(R, 24, due_before=D), PenaltyPeriod(R, 24, due_before=date(2025, 1, 1))), "overlap"),
        ((PenaltyPeriod(R, 24, due_before=date(2024, 1, 2)), PenaltyPeriod(R, 24, due_from=D)), "overlap"),
        ((PenaltyPeriod(R, 24, due_before=D), PenaltyPeriod(R, 24, due_from=date(2024, 1, 2))), "2024-01-01"),  # gap
    ],
)
def test_invalid_policies_refused(periods, words):
    with pytest.raises(ValueError) as e:
        PenaltyPolicy(periods)
    assert words in str(e.value)


def test_rate_bounds_inclusive():
    PenaltyPolicy((PenaltyPeriod(Decimal(0), 0),))
    PenaltyPolicy((PenaltyPeriod(Decimal(1), 24),))


# --- amount --------------------------------------------------------------------------------------


def test_penalty_rounds_half_up():
    # 150 * 1 % * 1 = 1.5 -> 2 ; 250 * 1 % * 1 = 2.5 -> 3 (not 2, as banker's rounding would give)
    assert penalty(date(2026, 1, 1), date(2026, 1, 2), principal=150) == Penalty(1, 2)
    assert penalty(date(2026, 1, 1), date(2026, 1, 2), principal=250) == Penalty(1, 3)
    assert penalty(date(2026, 1, 1), date(2026, 1, 2), principal=149) == Penalty(1, 1)  # 1.49
    # 2 %: 125 * 0.02 * 3 = 7.5 -> 8
    assert penalty(date(2023, 1, 1), date(2023, 3, 2), principal=125) == Penalty(3, 8)


def test_penalty_zero_principal():
    assert penalty(date(2020, 1, 1), date(2026, 1, 1), principal=0) == Penalty(24, 0)


@pytest.mark.parametrize("bad", [-1, True, 1000.0, Decimal("1000")])
def test_penalty_refuses_bad_principal(bad):
    with pytest.raises(ValueError):
        penalty(date(2026, 1, 1), date(2026, 2, 1), principal=bad)


@given(st.integers(0, 10**12), dates, dates)
def test_penalty_is_exact_decimal_arithmetic(principal, due, paid_on):
    got = pbb_penalty(principal, due, paid_on, DEFAULT_PBB_POLICY)
    period = DEFAULT_PBB_POLICY.period_for(due)
    assert got.months_late == months_late(due, paid_on, period.max_months)
    exact = principal * period.rate_per_month * got.months_late
    assert type(got.amount) is int
    # half-up on a non-negative value: exact lies in [amount - 0.5, amount + 0.5)
    assert Decimal(got.amount) - Decimal("0.5") <= exact < Decimal(got.amount) + Decimal("0.5")
    assert 0 <= got.amount <= round(principal * 0.48) + 1
