"""Money is whole rupiah as int everywhere (domain.md "Money"): no floats, no implied decimals."""

import decimal

from ._digits import is_ascii_digits
from .errors import FormatError

# Amounts are stored as PostgreSQL bigint; anything larger cannot be a real amount and would fail
# deep inside the database instead of as a clean RC 30.
MAX_AMOUNT = 2**63 - 1


def round_half_up(value: decimal.Decimal) -> int:
    """Round to whole rupiah, halves away from zero (0.5 -> 1, -0.5 -> -1).

    Python's round() and Decimal's default are banker's rounding (0.5 -> 0), which would undercharge
    the penalty against the Perda's arithmetic. ROUND_HALF_UP in `decimal` is "away from zero".
    to_integral_value ignores the context precision, so huge values do not raise or lose digits.
    """
    if not isinstance(value, decimal.Decimal):
        # Floats would already have lost exactness before we could round them.
        raise TypeError(f"round_half_up needs a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"cannot round {value} to rupiah")
    return int(value.to_integral_value(rounding=decimal.ROUND_HALF_UP))


def parse_amount(value: "str | int", field: str = "amount") -> int:
    """A non-negative amount in rupiah from JSON (int) or ISO 8583 (zero-padded n12 digit string)."""
    if isinstance(value, bool):
        raise FormatError(field, "must be a whole number of rupiah")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str) and is_ascii_digits(value):
        # Digits only: no sign, no decimal point, no thousands separators, no whitespace. Leading
        # zeros are fine (ISO n12 is zero-padded); the length check comes first so that a huge
        # string cannot hit int()'s own digit limit, which raises a plain ValueError.
        if len(value.lstrip("0")) > len(str(MAX_AMOUNT)):
            raise FormatError(field, "too large")
        amount = int(value)
    else:
        raise FormatError(field, "must be a whole number of rupiah")
    if amount < 0:
        raise FormatError(field, "must not be negative")
    if amount > MAX_AMOUNT:
        raise FormatError(field, "too large")
    return amount
