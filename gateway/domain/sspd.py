"""SSPD BPHTB registration numbers: YYYYMM + 6-digit serial + 2 MOD 97-10 check digits."""

from ._digits import is_ascii_digits
from .checkdigits import mod97_check, mod97_valid
from .errors import FormatError

REGISTRATION_LENGTH = 14
_FIELD = "registration_number"


def parse_registration(text: str) -> str:
    """The 14-digit registration number, or FormatError (RC 30) for length, digits, month or check."""
    if not isinstance(text, str):
        raise FormatError(_FIELD, "must be text")
    # Surrounding whitespace is a copy-paste artefact, not a different number; inner characters are
    # not forgiven because the number is printed without separators.
    number = text.strip()
    if len(number) != REGISTRATION_LENGTH or not is_ascii_digits(number):
        raise FormatError(_FIELD, f"must be {REGISTRATION_LENGTH} digits")
    if not 1 <= int(number[4:6]) <= 12:
        raise FormatError(_FIELD, "month part must be 01..12")
    if not mod97_valid(number):
        raise FormatError(_FIELD, "wrong check digits")
    return number


def make_registration(year: int, month: int, serial: int) -> str:
    """Build a valid registration number (used by tests, demos and the BPHTB fixture data)."""
    _require_int("year", year, 0, 9999)
    _require_int("month", month, 1, 12)
    _require_int("serial", serial, 0, 999_999)
    first12 = f"{year:04d}{month:02d}{serial:06d}"
    return first12 + mod97_check(first12)


def _require_int(name: str, value: int, low: int, high: int) -> None:
    # bool is rejected: True would silently format as "1".
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
