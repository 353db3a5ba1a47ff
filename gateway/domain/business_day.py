"""Business date and cut-off (domain.md "Business day and cut-off").

All functions take "now" as an argument (the caller owns the clock, including the testing clock
offset of operations.md), so they are pure and testable at any instant.

Business day D runs from the cut-off on D-1 (inclusive) to the cut-off on D (exclusive), in
region-local time. With the default 23:00, a payment at 23:30 on the 23rd belongs to the 24th.

A cut-off of 00:00 means "no shift": the business date is just the local date, and day D ends at
the following midnight. (Read literally, "at or after 00:00 belongs to the next day" would move
every message one day forward, which nobody configuring 00:00 means.)
"""

import datetime
from zoneinfo import ZoneInfo

_MIDNIGHT = datetime.time(0, 0)


def local_now(now_utc: datetime.datetime, tz: ZoneInfo) -> datetime.datetime:
    """`now_utc` as region-local time."""
    # A naive datetime would be taken as the host's local time by astimezone(): on a server in UTC
    # that silently shifts business dates by 7 hours for Jakarta. Refuse it outright.
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("now_utc must be timezone-aware")
    return now_utc.astimezone(tz)


def business_date(now_utc: datetime.datetime, tz: ZoneInfo, cutoff: datetime.time) -> datetime.date:
    """The business date a message received at `now_utc` belongs to."""
    cutoff = _naive(cutoff)
    local = local_now(now_utc, tz)
    day = local.date()
    if cutoff != _MIDNIGHT and local.time() >= cutoff:
        day += datetime.timedelta(days=1)
    return day


def cutoff_moment(day: datetime.date, tz: ZoneInfo, cutoff: datetime.time) -> datetime.datetime:
    """The UTC instant at which business day `day` ends (the first instant of day+1)."""
    cutoff = _naive(cutoff)
    if cutoff == _MIDNIGHT:
        end_day, end_time = day + datetime.timedelta(days=1), _MIDNIGHT
    else:
        end_day, end_time = day, cutoff
    # In zones with DST a wall time can be skipped or repeated; zoneinfo's fold=0 picks the earlier
    # reading. Asia/Jakarta has no DST, so this only matters for exotic configurations.
    return datetime.datetime.combine(end_day, end_time, tzinfo=tz).astimezone(datetime.timezone.utc)


def cutoff_passed(day: datetime.date, now_utc: datetime.datetime, tz: ZoneInfo, cutoff: datetime.time) -> bool:
    """Whether business day `day` is over at `now_utc`, i.e. it may be closed (settled).

    At the cut-off instant itself messages already belong to the next day, so the day is over.
    """
    local_now(now_utc, tz)  # same awareness check as everywhere else
    return now_utc >= cutoff_moment(day, tz, cutoff)


def parse_cutoff(text: str) -> datetime.time:
    """The configured cut-off, strictly "HH:MM" (24-hour) so a typo cannot pass as a valid time."""
    if (
        not isinstance(text, str)
        or len(text) != 5
        or text[2] != ":"
        or not all(c in "0123456789" for c in text[:2] + text[3:])
    ):
        raise ValueError(f"cut-off must be HH:MM, got {text!r}")
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"cut-off must be a time of day 00:00..23:59, got {text!r}")
    return datetime.time(hours, minutes)


def _naive(t: datetime.time) -> datetime.time:
    # The cut-off is a local wall-clock time; a tzinfo on it would make it unequal to 00:00 and make
    # ordering comparisons with the (naive) local wall time raise TypeError, so it is dropped.
    return t.replace(tzinfo=None)
