"""NTPD, the payment proof number: YYMMDD + tax digit + 9-digit serial + 2 MOD 97-10 check digits.

The serial comes from a database sequence (so NTPDs are unique across instances); this module only
formats and validates.
"""

import datetime

from ._digits import is_ascii_digits
from .bills import Tax
from .checkdigits import mod97_check, mod97_valid
from .errors import FormatError

NTPD_LENGTH = 18
MAX_SERIAL = 999_999_999


def make_ntpd(business_date: datetime.date, tax: Tax, serial: int) -> str:
    """The NTPD for an approved payment of `tax` on `business_date` with sequence value `serial`."""
    if isinstance(serial, bool) or not isinstance(serial, int) or not 1 <= serial <= MAX_SERIAL:
        # Running out of serials must fail loudly rather than wrap and reuse a proof number.
        raise ValueError(f"NTPD serial must be in 1..{MAX_SERIAL}, got {serial!r}")
    if not 2000 <= business_date.year <= 2099:
        # YY is read back as 20YY; other centuries would produce an NTPD naming the wrong date.
        raise ValueError(f"NTPD business date must be in 2000..2099, got {business_date}")
    first16 = f"{business_date:%y%m%d}{Tax(tax).digit}{serial:09d}"
    return first16 + mod97_check(first16)


def parse_ntpd(text: str) -> str:
    """The NTPD if it is 18 digits with a valid check, date and tax digit; else FormatError."""
    if not isinstance(text, str) or len(text) != NTPD_LENGTH or not is_ascii_digits(text):
        raise FormatError("ntpd", f"must be {NTPD_LENGTH} digits")
    if not mod97_valid(text):
        raise FormatError("ntpd", "wrong check digits")
    try:
        datetime.date(2000 + int(text[0:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise FormatError("ntpd", "date part is not a valid date") from None
    if text[6] not in {t.digit for t in Tax}:
        raise FormatError("ntpd", "tax type digit must be 1 or 2")
    return text


def ntpd_tax(ntpd: str) -> Tax:
    """Which tax an NTPD was issued for (its type digit)."""
    return Tax.from_digit(parse_ntpd(ntpd)[6])
