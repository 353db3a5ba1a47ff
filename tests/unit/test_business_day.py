from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import business_date, cutoff_moment, cutoff_passed, local_now, parse_cutoff

JKT = ZoneInfo("Asia/Jakarta")  # UTC+7, no DST
UTC = timezone.utc
CUTOFF = time(23, 0)


def jkt(*args):
    """An aware instant given in Jakarta wall time, expressed in UTC as a real clock would give it."""
    return datetime(*args, tzinfo=JKT).astimezone(UTC)


def test_local_now():
    now = datetime(2026, 11, 23, 2, 15, 2, tzinfo=UTC)
    assert local_now(now, JKT) == datetime(2026, 11, 23, 9, 15, 2, tzinfo=JKT)
    assert local_now(now, JKT).utcoffset() == timedelta(hours=7)


def test_naive_now_refused():
    naive = datetime(2026, 11, 23, 16, 0)
    for call in (
        lambda: local_now(naive, JKT),
        lambda: business_date(naive, JKT, CUTOFF),
        lambda: cutoff_passed(date(2026, 11, 23), naive, JKT, CUTOFF),
    ):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ((2026, 11, 23, 0, 0, 0), date(2026, 11, 23)),
        ((2026, 11, 23, 9, 15, 2), date(2026, 11, 23)),
        ((2026, 11, 23, 22, 59, 59), date(2026, 11, 23)),
        ((2026, 11, 23, 22, 59, 59, 999999), date(2026, 11, 23)),
        ((2026, 11, 23, 23, 0, 0), date(2026, 11, 24)),
        ((2026, 11, 23, 23, 59, 59), date(2026, 11, 24)),
        ((2026, 11, 24, 0, 0, 0), date(2026, 11, 24)),  # after midnight, before cut-off
        # month end
        ((2026, 1, 31, 22, 59, 59), date(2026, 1, 31)),
        ((2026, 1, 31, 23, 0, 0), date(2026, 2, 1)),
        ((2026, 11, 30, 23, 0, 0), date(2026, 12, 1)),
        # February, common and leap year
        ((2026, 2, 28, 23, 0, 0), date(2026, 3, 1)),
        ((2028, 2, 28, 23, 0, 0), date(2028, 2, 29)),
        ((2028, 2, 29, 23, 0, 0), date(2028, 3, 1)),
        # year end
        ((2026, 12, 31, 22, 59, 59), date(2026, 12, 31)),
        ((2026, 12, 31, 23, 0, 0), date(2027, 1, 1)),
    ],
)
def test_business_date_at_cutoff_boundary(local, expected):
    assert business_date(jkt(*local), JKT, CUTOFF) == expected


def test_business_date_uses_local_not_utc_date():
    # 17:30 UTC on the 23rd is 00:30 on the 24th in Jakarta
    assert business_date(datetime(2026, 11, 23, 17, 30, tzinfo=UTC), JKT, CUTOFF) == date(2026, 11, 24)
    # 15:59:59 UTC = 22:59:59 WIB; 16:00:00 UTC = 23:00 WIB
    assert business_date(datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC), JKT, CUTOFF) == date(2026, 11, 23)
    assert business_date(datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC), JKT, CUTOFF) == date(2026, 11, 24)


def test_business_date_accepts_any_aware_now():
    # the same instant given with a +07:00 offset or in another zone gives the same answer
    instant = datetime(2026, 11, 23, 23, 0, tzinfo=timezone(timedelta(hours=7)))
    assert business_date(instant, JKT, CUTOFF) == date(2026, 11, 24)
    assert business_date(instant.astimezone(ZoneInfo("America/New_York")), JKT, CUTOFF) == date(2026, 11, 24)


def test_midnight_cutoff_means_no_shift():
    midnight = time(0, 0)
    assert business_date(jkt(2026, 11, 23, 0, 0, 0), JKT, midnight) == date(2026, 11, 23)
    assert business_date(jkt(2026, 11, 23, 23, 59, 59), JKT, midnight) == date(2026, 11, 23)
    assert cutoff_moment(date(2026, 11, 23), JKT, midnight) == jkt(2026, 11, 24, 0, 0, 0)
    assert not cutoff_passed(date(2026, 11, 23), jkt(2026, 11, 23, 23, 59, 59), JKT, midnight)
    assert cutoff_passed(date(2026, 11, 23), jkt(2026, 11, 24, 0, 0, 0), JKT, midnight)


def test_other_cutoffs():
    assert business_date(jkt(2026, 11, 23, 20, 59), JKT, time(21, 0)) == date(2026, 11, 23)
    assert business_date(jkt(2026, 11, 23, 21, 0), JKT, time(21, 0)) == date(2026, 11, 24)
    assert business_date(jkt(2026, 11, 23, 0, 29), JKT, time(0, 30)) == date(2026, 11, 23)
    assert business_date(jkt(2026, 11, 23, 0, 30), JKT, time(0, 30)) == date(2026, 11, 24)


def test_cutoff_with_tzinfo_is_read_as_local_wall_time():
    aware = time(23, 0, tzinfo=UTC)
    assert business_date(jkt(2026, 11, 23, 23, 0), JKT, aware) == date(2026, 11, 24)
    assert cutoff_moment(date(2026, 11, 23), JKT, aware) == jkt(2026, 11, 23, 23, 0)
    assert business_date(jkt(2026, 11, 23, 12, 0), JKT, time(0, 0, tzinfo=UTC)) == date(2026, 11, 23)


def test_cutoff_moment():
    moment = cutoff_moment(date(2026, 11, 23), JKT, CUTOFF)
    assert moment == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)
    assert cutoff_moment(date(2026, 12, 31), JKT, CUTOFF) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("day", [date(2026, 11, 23), date(2026, 1, 31), date(2026, 12, 31), date(2028, 2, 29)])
def test_cutoff_passed_around_the_boundary(day):
    boundary = jkt(day.year, day.month, day.day, 23, 0, 0)
    assert not cutoff_passed(day, jkt(day.year, day.month, day.day, 12, 0), JKT, CUTOFF)
    assert not cutoff_passed(day, boundary - timedelta(microseconds=1), JKT, CUTOFF)
    assert not cutoff_passed(day, boundary - timedelta(seconds=1), JKT, CUTOFF)
    assert cutoff_passed(day, boundary, JKT, CUTOFF)  # at the cut-off the day is over
    assert cutoff_passed(day, boundary + timedelta(days=3), JKT, CUTOFF)
    # a day in the future has not ended; the previous day has
    assert not cutoff_passed(day + timedelta(days=1), boundary, JKT, CUTOFF)
    assert cutoff_passed(day - timedelta(days=1), boundary - timedelta(seconds=1), JKT, CUTOFF)


cutoffs = st.builds(time, st.integers(0, 23), st.integers(0, 59))
instants = st.datetimes(datetime(2001, 1, 1), datetime(2098, 12, 31), timezones=st.just(UTC))


@given(instants, cutoffs)
def test_business_date_is_local_date_or_next_day(now, cutoff):
    local = now.astimezone(JKT)
    got = business_date(now, JKT, cutoff)
    assert got in (local.date(), local.date() + timedelta(days=1))
    assert (got != local.date()) == (cutoff != time(0, 0) and local.time() >= cutoff)


@given(instants, cutoffs)
def test_cutoff_moment_ends_the_business_day(now, cutoff):
    day = business_date(now, JKT, cutoff)
    end = cutoff_moment(day, JKT, cutoff)
    # now lies inside its business day: before that day's end, at or after the previous day's end
    assert cutoff_moment(day - timedelta(days=1), JKT, cutoff) <= now < end
    assert business_date(end, JKT, cutoff) == day + timedelta(days=1)
    assert business_date(end - timedelta(microseconds=1), JKT, cutoff) == day
    assert not cutoff_passed(day, now, JKT, cutoff)
    assert cutoff_passed(day - timedelta(days=1), now, JKT, cutoff)


@given(instants, st.integers(1, 10**6))
def test_business_date_is_monotone(now, seconds):
    assert business_date(now, JKT, CUTOFF) <= business_date(now + timedelta(seconds=seconds), JKT, CUTOFF)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("23:00", time(23, 0)), ("00:00", time(0, 0)), ("07:05", time(7, 5)), ("23:59", time(23, 59))],
)
def test_parse_cutoff(text, expected):
    assert parse_cutoff(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "23", "2300", "23:0", "3:00", "23:00:00", "24:00", "23:60", "99:99", " 23:00", "23:00 ", "23.00", "２３:００",
     "٢٣:٠٠", "+1:00", "-1:00", "1e:00", None, 2300, time(23, 0)],
)
def test_parse_cutoff_refuses(text):
    with pytest.raises(ValueError):
        parse_cutoff(text)
