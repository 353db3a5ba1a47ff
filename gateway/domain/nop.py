"""NOP (Nomor Objek Pajak) and tax year: parsing, display and region membership.

NOPs arrive typed by tellers, printed on SPPTs, in CSV imports and inside ISO field 61, so parsing
is lenient about separators but strict about digits (domain.md "NOP").
"""

from ._digits import is_ascii_digits
from .errors import FormatError

NOP_LENGTH = 18
# Widths of the NOP's parts, in order (domain.md): province, regency/city, district, village, block,
# serial, object type.
_PARTS = (
    ("province", 2),
    ("regency", 2),
    ("district", 3),
    ("village", 3),
    ("block", 3),
    ("serial", 4),
    ("object_type", 1),
)
# Only the separators of the display form (and spaces people type between groups) are removed;
# anything else, including tabs or Unicode dashes, stays and makes the NOP malformed.
_SEPARATORS = str.maketrans("", "", ".- ")


def parse_nop(text: str) -> str:
    """The 18 plain digits of a NOP given in display form or plain; FormatError("nop") otherwise."""
    if not isinstance(text, str):
        raise FormatError("nop", "must be text")
    digits = text.translate(_SEPARATORS)
    if not is_ascii_digits(digits):
        raise FormatError("nop", "must contain only digits, dots, dashes and spaces")
    if len(digits) != NOP_LENGTH:
        raise FormatError("nop", f"must have {NOP_LENGTH} digits, got {len(digits)}")
    return digits


def _require_plain_nop(nop: str) -> str:
    # Display and split take the canonical form only: accepting the display form here would hide a
    # caller that forgot to parse its input.
    if not (isinstance(nop, str) and len(nop) == NOP_LENGTH and is_ascii_digits(nop)):
        raise FormatError("nop", f"must be {NOP_LENGTH} plain digits")
    return nop


def nop_parts(nop: str) -> dict[str, str]:
    """Split a plain NOP into its named parts."""
    _require_plain_nop(nop)
    parts, start = {}, 0
    for name, width in _PARTS:
        parts[name] = nop[start : start + width]
        start += width
    return parts


def display_nop(nop: str) -> str:
    """`PP.KK.CCC.DDD.BBB-NNNN.J`, the form printed on SPPTs and receipts."""
    p = nop_parts(nop)
    return (
        f"{p['province']}.{p['regency']}.{p['district']}.{p['village']}.{p['block']}"
        f"-{p['serial']}.{p['object_type']}"
    )


def in_region(nop: str, region_code: str) -> bool:
    """Whether the NOP belongs to the region this gateway serves (province + regency = 4 digits).

    A NOP of another region is well-formed but not ours, so callers answer RC 14, not RC 30.
    """
    _require_plain_nop(nop)
    if not (isinstance(region_code, str) and len(region_code) == 4 and is_ascii_digits(region_code)):
        raise ValueError(f"region code must be 4 digits, got {region_code!r}")
    return nop[:4] == region_code


def parse_tax_year(value: "str | int") -> int:
    """A tax year as an int in 1000..9999, from a 4-digit string (ISO, URL) or an int (JSON)."""
    if isinstance(value, bool):
        # bool is an int subclass; JSON `true` must not become tax year 1.
        raise FormatError("tax_year", "must be a 4-digit year")
    if isinstance(value, int):
        year = value
    elif isinstance(value, str) and len(value) == 4 and is_ascii_digits(value):
        year = int(value)
    else:
        raise FormatError("tax_year", "must be a 4-digit year")
    # "0999" is four digits but not a 4-digit number; rejecting it keeps str and int inputs in the
    # same range (domain.md: "Not a 4-digit number -> RC 30").
    if not 1000 <= year <= 9999:
        raise FormatError("tax_year", "must be a 4-digit year")
    return year
