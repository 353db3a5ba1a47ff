"""ISO 7064 MOD 97-10 check digits, the IBAN scheme, used by SSPD registration numbers and NTPDs.

MOD 97-10 catches every single-digit substitution and every adjacent transposition, which are the
errors a teller makes when typing a number off a form.
"""

from ._digits import is_ascii_digits


def mod97_check(digits: str) -> str:
    """The two check digits for `digits` (domain.md: 98 - (int(digits) * 100 % 97), 2 digits)."""
    if not is_ascii_digits(digits):
        raise ValueError(f"check digits need a non-empty string of ASCII digits, got {digits!r}")
    return f"{98 - int(digits) * 100 % 97:02d}"


def mod97_valid(digits: str) -> bool:
    """Whether `digits` (payload followed by its two check digits) satisfies int(digits) % 97 == 1."""
    # At least one payload digit: a bare "01" would otherwise pass.
    if not is_ascii_digits(digits) or len(digits) < 3:
        return False
    return int(digits) % 97 == 1
