import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import FormatError, make_registration, mod97_check, mod97_valid, parse_registration

EXAMPLE = "20261100012356"  # domain.md


def test_spec_example():
    assert make_registration(2026, 11, 123) == EXAMPLE
    assert parse_registration(EXAMPLE) == EXAMPLE


def test_surrounding_whitespace_is_stripped():
    assert parse_registration(f"  {EXAMPLE}\n") == EXAMPLE


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026110001235", "13 digits"),
        ("202611000123560", "15 digits"),
        ("", "empty"),
        ("2026110001235a", "letter"),
        ("2026-11-000123-56", "separators are not removed"),
        ("202611 00012356", "inner space"),
        ("٢٠٢٦١١٠٠٠١٢٣٥٦", "Arabic-Indic digits"),
        ("20261100012357", "wrong check"),
        ("20261100012365", "check digits swapped"),
    ],
)
def test_refused(text, why):
    with pytest.raises(FormatError) as e:
        parse_registration(text)
    assert e.value.field == "registration_number", why


@pytest.mark.parametrize("month", [0, 13, 99])
def test_month_must_be_01_to_12(month):
    first12 = f"2026{month:02d}000123"
    # valid check digits, so only the month is wrong
    number = first12 + mod97_check(first12)
    assert mod97_valid(number)
    with pytest.raises(FormatError) as e:
        parse_registration(number)
    assert "month" in e.value.reason


@pytest.mark.parametrize("value", [None, 20261100012356, b"20261100012356"])
def test_non_text_refused(value):
    with pytest.raises(FormatError):
        parse_registration(value)


def _valid_registrations():
    parts = [(2026, 11, 123), (2024, 1, 1), (2025, 12, 999_999), (2026, 6, 0)]
    return [make_registration(y, m, s) for y, m, s in parts]


@pytest.mark.parametrize("number", _valid_registrations())
def test_every_single_digit_substitution_is_detected(number):
    assert parse_registration(number) == number
    for pos in range(len(number)):
        for digit in "0123456789":
            if digit == number[pos]:
                continue
            wrong = number[:pos] + digit + number[pos + 1 :]
            assert not mod97_valid(wrong), (number, pos, digit)
            with pytest.raises(FormatError):
                parse_registration(wrong)


@pytest.mark.parametrize("number", _valid_registrations())
def test_every_adjacent_transposition_is_detected(number):
    # MOD 97-10 detects all of them: swapping a != b at positions k, k+1 changes the value by
    # (a - b) * 9 * 10^k, never a multiple of the prime 97.
    for pos in range(len(number) - 1):
        a, b = number[pos], number[pos + 1]
        if a == b:
            continue
        wrong = number[:pos] + b + a + number[pos + 2 :]
        assert not mod97_valid(wrong), (number, pos)
        with pytest.raises(FormatError):
            parse_registration(wrong)


@given(st.integers(0, 9999), st.integers(1, 12), st.integers(0, 999_999))
def test_made_numbers_always_parse(year, month, serial):
    number = make_registration(year, month, serial)
    assert len(number) == 14
    assert number[:4] == f"{year:04d}" and number[4:6] == f"{month:02d}" and number[6:12] == f"{serial:06d}"
    assert parse_registration(number) == number


@pytest.mark.parametrize(
    ("year", "month", "serial"),
    [
        (2026, 0, 1),
        (2026, 13, 1),
        (2026, 1, -1),
        (2026, 1, 1_000_000),
        (10000, 1, 1),
        (-1, 1, 1),
        (2026, True, 1),
        (2026, 1, 1.0),
    ],
)
def test_make_refuses_out_of_range_parts(year, month, serial):
    with pytest.raises(ValueError):
        make_registration(year, month, serial)
