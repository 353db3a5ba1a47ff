import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import FormatError, Tax, make_ntpd, mod97_check, mod97_valid, ntpd_tax, parse_ntpd

PROOF_EXAMPLE = "261123100000001210"  # the proof document of domain.md


def test_proof_example_is_a_valid_ntpd():
    assert parse_ntpd(PROOF_EXAMPLE) == PROOF_EXAMPLE
    assert make_ntpd(datetime.date(2026, 11, 23), Tax.PBB, 12) == PROOF_EXAMPLE
    assert ntpd_tax(PROOF_EXAMPLE) is Tax.PBB


def test_layout():
    n = make_ntpd(datetime.date(2027, 1, 5), Tax.BPHTB, 123_456_789)
    assert n[:6] == "270105"
    assert n[6] == "2"
    assert n[7:16] == "123456789"
    assert n[16:] == mod97_check(n[:16])
    assert ntpd_tax(n) is Tax.BPHTB


@pytest.mark.parametrize("serial", [0, -1, 1_000_000_000, True, 1.0, "1"])
def test_serial_range(serial):
    with pytest.raises(ValueError):
        make_ntpd(datetime.date(2026, 11, 23), Tax.PBB, serial)


def test_serial_bounds_accepted():
    assert make_ntpd(datetime.date(2026, 11, 23), Tax.PBB, 1)[7:16] == "000000001"
    assert make_ntpd(datetime.date(2026, 11, 23), Tax.PBB, 999_999_999)[7:16] == "999999999"


@pytest.mark.parametrize("day", [datetime.date(1999, 12, 31), datetime.date(2100, 1, 1)])
def test_business_date_outside_20yy_refused(day):
    with pytest.raises(ValueError):
        make_ntpd(day, Tax.PBB, 1)


def _with_check(first16: str) -> str:
    return first16 + mod97_check(first16)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("26112310000000121", "17 digits"),
        ("2611231000000012100", "19 digits"),
        ("", "empty"),
        ("26112310000000121A", "letter"),
        ("٢٦١١٢٣١٠٠٠٠٠٠٠١٢١٠", "Arabic-Indic digits"),
        (" 261123100000001210", "whitespace"),
        ("261123100000001211", "wrong check"),
        (_with_check("2613231000000012"), "month 13"),
        (_with_check("2611001000000012"), "day 00"),
        (_with_check("2602291000000012"), "29 Feb 2026 does not exist"),
        (_with_check("2611233000000012"), "type digit 3"),
        (_with_check("2611230000000012"), "type digit 0"),
    ],
)
def test_refused(text, why):
    with pytest.raises(FormatError) as e:
        parse_ntpd(text)
    assert e.value.field == "ntpd", why


def test_leap_day_accepted():
    n = _with_check("2802292000000001")
    assert parse_ntpd(n) == n


@pytest.mark.parametrize("value", [None, 261123100000001210])
def test_non_text_refused(value):
    with pytest.raises(FormatError):
        parse_ntpd(value)


VALID = [
    PROOF_EXAMPLE,
    make_ntpd(datetime.date(2030, 2, 28), Tax.BPHTB, 987_654_321),
    make_ntpd(datetime.date(2000, 1, 1), Tax.PBB, 1),
]


@pytest.mark.parametrize("ntpd", VALID)
def test_every_single_digit_substitution_is_detected(ntpd):
    for pos in range(len(ntpd)):
        for digit in "0123456789":
            if digit == ntpd[pos]:
                continue
            wrong = ntpd[:pos] + digit + ntpd[pos + 1 :]
            assert not mod97_valid(wrong), (ntpd, pos, digit)
            with pytest.raises(FormatError):
                parse_ntpd(wrong)


@pytest.mark.parametrize("ntpd", VALID)
def test_every_adjacent_transposition_is_detected(ntpd):
    for pos in range(len(ntpd) - 1):
        a, b = ntpd[pos], ntpd[pos + 1]
        if a == b:
            continue
        wrong = ntpd[:pos] + b + a + ntpd[pos + 2 :]
        assert not mod97_valid(wrong), (ntpd, pos)
        with pytest.raises(FormatError):
            parse_ntpd(wrong)


@given(
    st.dates(datetime.date(2000, 1, 1), datetime.date(2099, 12, 31)),
    st.sampled_from(list(Tax)),
    st.integers(1, 999_999_999),
)
def test_made_ntpds_always_parse(day, tax, serial):
    n = make_ntpd(day, tax, serial)
    assert len(n) == 18
    assert parse_ntpd(n) == n
    assert ntpd_tax(n) is tax
    assert n[:6] == day.strftime("%y%m%d")
    assert int(n[7:16]) == serial


@given(st.dates(datetime.date(2000, 1, 1), datetime.date(2099, 12, 31)), st.integers(1, 999_999_998))
def test_distinct_serials_give_distinct_ntpds(day, serial):
    assert make_ntpd(day, Tax.PBB, serial) != make_ntpd(day, Tax.PBB, serial + 1)
    assert make_ntpd(day, Tax.PBB, serial) != make_ntpd(day, Tax.BPHTB, serial)


def test_ntpd_tax_validates():
    with pytest.raises(FormatError):
        ntpd_tax("261123100000001211")
