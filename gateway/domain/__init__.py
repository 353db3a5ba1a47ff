"""Pure domain rules of the gateway: identifiers, money, penalty, business day, response codes.

No I/O, no asyncio, no imports from the rest of the project: everything here is a function of its
arguments (the clock included), so the rules of domain.md can be tested exhaustively and reused by
the ISO 8583 and HTTP front ends, the importers and settlement alike.
"""

from .bills import BillStatus, Channel, Tax, other_unpaid_years, pbb_bill_key
from .business_day import business_date, cutoff_moment, cutoff_passed, local_now, parse_cutoff
from .checkdigits import mod97_check, mod97_valid
from .codes import RC, message
from .errors import FormatError
from .money import parse_amount, round_half_up
from .nop import display_nop, in_region, nop_parts, parse_nop, parse_tax_year
from .ntpd import make_ntpd, ntpd_tax, parse_ntpd
from .penalty import (
    DEFAULT_PBB_POLICY,
    Penalty,
    PenaltyPeriod,
    PenaltyPolicy,
    months_late,
    pbb_penalty,
)
from .sspd import make_registration, parse_registration

__all__ = [
    "DEFAULT_PBB_POLICY",
    "RC",
    "BillStatus",
    "Channel",
    "FormatError",
    "Penalty",
    "PenaltyPeriod",
    "PenaltyPolicy",
    "Tax",
    "business_date",
    "cutoff_moment",
    "cutoff_passed",
    "display_nop",
    "in_region",
    "local_now",
    "make_ntpd",
    "make_registration",
    "message",
    "mod97_check",
    "mod97_valid",
    "months_late",
    "nop_parts",
    "ntpd_tax",
    "other_unpaid_years",
    "parse_amount",
    "parse_cutoff",
    "parse_nop",
    "parse_ntpd",
    "parse_registration",
    "parse_tax_year",
    "pbb_bill_key",
    "pbb_penalty",
    "round_half_up",
]
