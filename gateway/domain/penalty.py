"""PBB-P2 late-payment penalty (denda), domain.md "Penalty (denda) for PBB-P2".

The rate changed with UU 1/2022 (HKPD), and which rate applies depends on the bill's due date, not
on when it is paid; so the policy is a list of due-date periods, configured per region.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from .money import round_half_up


@dataclass(frozen=True)
class PenaltyPeriod:
    """Rate and cap for bills due in [due_from, due_before); None means unbounded on that side."""

    rate_per_month: Decimal
    max_months: int
    due_from: datetime.date | None = None
    due_before: datetime.date | None = None

    def covers(self, due: datetime.date) -> bool:
        return (self.due_from is None or self.due_from <= due) and (
            self.due_before is None or due < self.due_before
        )


@dataclass(frozen=True)
class PenaltyPolicy:
    """Penalty periods that together cover every due date exactly once."""

    periods: tuple[PenaltyPeriod, ...]

    def __post_init__(self) -> None:
        # Accept any iterable (e.g. a list from the config loader) but store a tuple: the policy is
        # frozen and shared, so it must not change under its users.
        object.__setattr__(self, "periods", tuple(self.periods))
        if not self.periods:
            raise ValueError("penalty policy needs at least one period")
        for p in self.periods:
            _check_period(p)
        _check_coverage(self.periods)

    def period_for(self, due: datetime.date) -> PenaltyPeriod:
        # Validation guarantees exactly one period matches.
        return next(p for p in self.periods if p.covers(due))


def _check_period(p: PenaltyPeriod) -> None:
    rate = p.rate_per_month
    # Decimal only: a float rate such as 0.01 is not exactly 1% and would leak into the rupiah.
    if not isinstance(rate, Decimal) or not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"penalty rate_per_month must be a Decimal in 0..1, got {rate!r}")
    if isinstance(p.max_months, bool) or not isinstance(p.max_months, int) or p.max_months < 0:
        raise ValueError(f"penalty max_months must be an int >= 0, got {p.max_months!r}")
    if p.due_from is not None and p.due_before is not None and p.due_from >= p.due_before:
        raise ValueError(f"penalty period is empty: due_from {p.due_from} is not before due_before {p.due_before}")


def _check_coverage(periods: tuple[PenaltyPeriod, ...]) -> None:
    """Every due date must fall in exactly one period: no gaps (a bill with no rate) and no overlaps
    (a bill with two rates). Sorted by start, each period must begin where the previous one ends."""
    ordered = sorted(periods, key=lambda p: p.due_from or datetime.date.min)
    first, last = ordered[0], ordered[-1]
    if first.due_from is not None:
        raise ValueError(f"penalty policy has no period for due dates before {first.due_from}")
    for a, b in zip(ordered, ordered[1:]):
        if a.due_before is None or b.due_from is None or a.due_before > b.due_from:
            raise ValueError(f"penalty periods overlap: {_describe(a)} and {_describe(b)}")
        if a.due_before < b.due_from:
            raise ValueError(f"penalty policy has no period for due dates from {a.due_before} before {b.due_from}")
    if last.due_before is not None:
        raise ValueError(f"penalty policy has no period for due dates from {last.due_before}")


def _describe(p: PenaltyPeriod) -> str:
    return f"[{p.due_from or '-inf'}, {p.due_before or '+inf'})"


DEFAULT_PBB_POLICY = PenaltyPolicy(
    (
        # UU 28/2009 era Perda PBB-P2.
        PenaltyPeriod(Decimal("0.02"), 24, due_before=datetime.date(2024, 1, 1)),
        # UU 1/2022 (HKPD) era.
        PenaltyPeriod(Decimal("0.01"), 24, due_from=datetime.date(2024, 1, 1)),
    )
)


def months_late(due: datetime.date, paid_on: datetime.date, max_months: int) -> int:
    """Started months after the due date, capped; exactly the pseudocode of domain.md.

    A month starts the day after the same day number: due 08-31 -> 09-01 is month 1, 10-01 month 2.
    When the later month is shorter (due 01-31, paid 02-28) the day comparison simply never fires,
    so 02-28 is still month 1 and 03-01 is month 2.
    """
    if isinstance(max_months, bool) or not isinstance(max_months, int) or max_months < 0:
        raise ValueError(f"max_months must be an int >= 0, got {max_months!r}")
    if paid_on <= due:
        return 0
    m = (paid_on.year - due.year) * 12 + (paid_on.month - due.month)
    if paid_on.day > due.day:
        m += 1
    return min(m, max_months)


@dataclass(frozen=True)
class Penalty:
    months_late: int
    amount: int


def pbb_penalty(principal: int, due: datetime.date, paid_on: datetime.date, policy: PenaltyPolicy) -> Penalty:
    """The penalty for paying a PBB-P2 bill of `principal` rupiah due on `due` on local date `paid_on`.

    `paid_on` is the gateway's region-local date when it processes the message (not the bank's
    field 13); the caller supplies it so this stays a pure function.
    """
    if isinstance(principal, bool) or not isinstance(principal, int) or principal < 0:
        raise ValueError(f"principal must be an int >= 0 (rupiah), got {principal!r}")
    period = policy.period_for(due)
    months = months_late(due, paid_on, period.max_months)
    return Penalty(months, round_half_up(Decimal(principal) * period.rate_per_month * months))
