"""Bill vocabulary: taxes, bill statuses, payment channels and small bill-level rules."""

import enum
from collections.abc import Iterable

from .errors import FormatError
from .nop import parse_nop, parse_tax_year

# Both the NTPD type digit and the ISO channel code are wire values; keeping the mappings next to
# the enums means one table to audit against the spec.
_TAX_DIGITS = {"PBB": "1", "BPHTB": "2"}


class Tax(enum.StrEnum):
    PBB = "PBB"
    BPHTB = "BPHTB"

    @property
    def digit(self) -> str:
        """The NTPD type digit `T` (domain.md: 1 = PBB, 2 = BPHTB)."""
        return _TAX_DIGITS[self.value]

    @classmethod
    def from_digit(cls, d: str) -> "Tax":
        for tax in cls:
            if tax.digit == d:
                return tax
        raise FormatError("tax", f"unknown tax type digit {d!r}")


class BillStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PAID = "paid"
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    # Order matters: ISO field 18 codes 6010..6017 are assigned in this order (iso8583.md).
    TELLER = "teller"
    ATM = "atm"
    EDC = "edc"
    PHONE = "phone"
    INTERNET = "internet"
    KIOSK = "kiosk"
    AUTODEBIT = "autodebit"
    MOBILE = "mobile"

    @property
    def iso_code(self) -> str:
        """ISO 8583 field 18 channel type for this channel."""
        return _CHANNEL_TO_ISO[self]

    @classmethod
    def from_iso(cls, code: str) -> "Channel":
        """Field 18 value to channel; any other value is a format error (RC 30)."""
        try:
            return _ISO_TO_CHANNEL[code]
        except (KeyError, TypeError):  # TypeError: unhashable junk from a bad caller
            raise FormatError("channel", f"unknown channel type {code!r}") from None

    @classmethod
    def parse(cls, name: str) -> "Channel":
        """JSON `channel` name to channel. Exact lower-case names only, as the spec lists them."""
        try:
            return cls(name)
        except ValueError:
            raise FormatError("channel", f"unknown channel {name!r}") from None


_CHANNEL_TO_ISO = {ch: str(6010 + i) for i, ch in enumerate(Channel)}
_ISO_TO_CHANNEL = {code: ch for ch, code in _CHANNEL_TO_ISO.items()}

# The PBB profile (iso8583.md field 62 #15) looks back over the current year and the five before it,
# and has room for five years.
ARREARS_WINDOW_YEARS = 6
MAX_OTHER_UNPAID_YEARS = 5


def other_unpaid_years(business_year: int, tax_year: int, unpaid_years: Iterable[int]) -> tuple[int, ...]:
    """The NOP's unpaid years other than `tax_year`, within business_year-5..business_year.

    `unpaid_years` is whatever the store found unpaid (not paid, not cancelled) for the NOP; it may
    contain duplicates, the bill's own year, or years outside the window, all of which are dropped
    here so the store query can stay simple. Newest first, at most five.
    """
    oldest = business_year - (ARREARS_WINDOW_YEARS - 1)
    years = {y for y in unpaid_years if oldest <= y <= business_year and y != tax_year}
    return tuple(sorted(years, reverse=True)[:MAX_OTHER_UNPAID_YEARS])


def pbb_bill_key(nop: str, tax_year: int) -> str:
    """The PBB bill id as field 61 carries it: NOP (18) + tax year (4) = 22 digits."""
    # Validated through nop.py so that a key can never be built from a malformed NOP or year.
    return parse_nop(nop) + f"{parse_tax_year(tax_year):04d}"
