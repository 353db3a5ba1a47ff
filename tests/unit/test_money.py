from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import FormatError, parse_amount, round_half_up


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("0.4", 0),
        ("0.49999", 0),
        ("0.5", 1),  # half rounds up, not to even
        ("1.5", 2),
        ("2.5", 3),  # banker's rounding would give 2
        ("4500.5", 4501),
        ("4500.4999", 4500),
        ("10000.00", 10000),
        ("-0.5", -1),  # away from zero
        ("-2.5", -3),
        ("-2.4", -2),
        ("123456789012345678901234567890.5", 123456789012345678901234567891),  # beyond default precision
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(Decimal(value)) == expected


def test_round_half_up_returns_int():
    assert type(round_half_up(Decimal("3.7"))) is int


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_round_half_up_refuses_non_finite(value):
    with pytest.raises(ValueError):
        round_half_up(value)


def test_round_half_up_refuses_float():
    with pytest.raises(TypeError):
        round_half_up(2.5)


@given(st.integers(-10**15, 10**15), st.integers(0, 99))
def test_round_half_up_property(whole, cents):
    value = Decimal(whole) + Decimal(cents) / 100 * (1 if whole >= 0 else -1)
    got = round_half_up(value)
    assert abs(Decimal(got) - value) <= Decimal("0.5")
    if cents == 50:
        assert abs(got) == abs(whole) + 1  # halves go away from zero


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (150000, 150000), ("150000", 150000), ("000000150000", 150000), ("000000000000", 0), ("0", 0),
     (2**63 - 1, 2**63 - 1), ("9223372036854775807", 2**63 - 1), ("0000009223372036854775807", 2**63 - 1)],
)
def test_parse_amount_accepts(value, expected):
    assert parse_amount(value) == expected


@pytest.mark.parametrize(
    "value",
    [-1, True, False, 1.0, 150000.0, Decimal("150000"), None, "", " 150000", "150000 ", "-150000", "+150000",
     "150.000", "150,000", "1500.00", "1e5", "١٥٠٠٠٠", "１５００００", "9223372036854775808", "9" * 5000, 2**63, b"150"],
)
def test_parse_amount_refuses(value):
    with pytest.raises(FormatError) as e:
        parse_amount(value)
    assert e.value.field == "amount"


def test_parse_amount_names_the_field():
    with pytest.raises(FormatError) as e:
        parse_amount("x", field="principal")
    assert e.value.field == "principal"
    assert str(e.value).startswith("principal: ")


@given(st.integers(0, 10**12 - 1))
def test_parse_amount_n12_round_trip(amount):
    assert parse_amount(f"{amount:012d}") == amount == parse_amount(amount)
