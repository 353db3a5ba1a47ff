"""The year of field 7: the one nearest the gateway's clock."""
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.transmission import transmission_year


@pytest.mark.parametrize("field7, now, year", [
    ("1123021500", datetime(2026, 11, 23, 2, 15, tzinfo=UTC), 2026),
    ("1231235959", datetime(2027, 1, 1, 0, 0, 3, tzinfo=UTC), 2026),   # sent before midnight, received after
    ("0101000002", datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC), 2027),  # a bank clock a few seconds ahead
    ("0229120000", datetime(2028, 2, 29, 12, 0, tzinfo=UTC), 2028),
    ("0229120000", datetime(2027, 3, 1, tzinfo=UTC), 2028),  # no 29 February in 2027: the nearest leap year
    ("1332000000", datetime(2026, 5, 1, tzinfo=UTC), 2026),  # not a moment: the clock's year
    ("06", datetime(2026, 5, 1, tzinfo=UTC), 2026),
])
def test_examples(field7, now, year):
    assert transmission_year(field7, now) == year


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
       st.integers(min_value=-86400 * 150, max_value=86400 * 150))
def test_a_moment_within_five_months_keeps_its_year(moment, skew_s):
    from datetime import timedelta

    moment = moment.replace(microsecond=0, tzinfo=UTC)
    now = moment + timedelta(seconds=skew_s)
    assert transmission_year(moment.strftime("%m%d%H%M%S"), now) == moment.year


def nearest_of_three(field7: str, now: datetime) -> int:
    """The rule as written: of the moment in the year before, the same year and the year after, the nearest."""
    best = None
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            moment = datetime(year, int(field7[0:2]), int(field7[2:4]), int(field7[4:6]), int(field7[6:8]),
                              int(field7[8:10]), tzinfo=UTC)
        except (ValueError, IndexError):
            continue
        if best is None or abs((moment - now).total_seconds()) < best[0]:
            best = (abs((moment - now).total_seconds()), year)
    return best[1] if best is not None else now.year


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
       st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)))
def test_the_shortcut_for_a_moment_within_half_a_year_gives_the_nearest_of_three(moment, now):
    """Any field 7 against any clock (days or years apart, 29 February too): the shortcut agrees with the rule."""
    now = now.replace(tzinfo=UTC)
    field7 = moment.strftime("%m%d%H%M%S")
    assert transmission_year(field7, now) == nearest_of_three(field7, now)
