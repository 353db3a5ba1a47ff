"""Fixed-width texts inside ISO fields: the field 62 bill profiles, field 90, and PAN masking.

The profile layouts are the tables of spec/iso8583.md "Field 62", written down once below as data;
rendering and parsing both walk the same table, so they cannot disagree about a position. Every slot
is exactly its width: text is made ASCII and cut or space-filled, numbers are zero-filled, and a number
that does not fit is an error (a cut amount would be a wrong amount, silently).
"""
from __future__ import annotations

from datetime import date
from typing import Any

from gateway.domain.assessment import Amount
from gateway.service.results import BillView

__all__ = [
    "ascii_text", "num", "pbb_profile", "bphtb_profile", "parse_pbb_profile", "parse_bphtb_profile",
    "parse_original_data", "original_data", "mask_pan",
]

# (key, width, kind). Kinds: "id" exactly `width` digits, kept as text (NOP, registration number:
# never padded, a short one is a bug); "n" a non-negative int, zero-filled; "an" text; "date"
# YYYYMMDD; "years" five 4-digit year slots.
_PBB_LAYOUT = (
    ("nop", 18, "id"),
    ("tax_year", 4, "n"),
    ("taxpayer_name", 35, "an"),
    ("object_address", 35, "an"),
    ("kelurahan", 35, "an"),
    ("kecamatan", 35, "an"),
    ("region", 35, "an"),
    ("land_area", 12, "n"),
    ("building_area", 12, "n"),
    ("due_date", 8, "date"),
    ("principal", 12, "n"),
    ("penalty", 12, "n"),
    ("total", 12, "n"),
    ("months_late", 2, "n"),
    ("other_unpaid_years", 20, "years"),
)
_BPHTB_LAYOUT = (
    ("registration_number", 14, "id"),
    ("nop", 18, "id"),
    ("tax_year", 4, "n"),
    ("taxpayer_name", 35, "an"),
    ("nik_masked", 16, "an"),
    ("object_address", 35, "an"),
    ("kelurahan", 35, "an"),
    ("kecamatan", 35, "an"),
    ("acquisition_type", 2, "n"),
    ("acquisition_value", 15, "n"),
    ("land_area", 12, "n"),
    ("building_area", 12, "n"),
    ("ppat_name", 35, "an"),
    ("valid_until", 8, "date"),
    ("principal", 12, "n"),
    ("penalty", 12, "n"),
    ("total", 12, "n"),
)
_PBB_LENGTH = sum(width for _, width, _ in _PBB_LAYOUT)
_BPHTB_LENGTH = sum(width for _, width, _ in _BPHTB_LAYOUT)
assert _PBB_LENGTH == 287 and _BPHTB_LENGTH == 312, "layouts disagree with the spec"

_YEAR_SLOTS = 5
_DIGITS = frozenset("0123456789")
_PRINTABLE = frozenset(chr(c) for c in range(0x20, 0x7F))


def ascii_text(text: str, width: int) -> str:
    """`text` in exactly `width` characters: non-ASCII and control characters become "?", then it is
    cut to `width` and space-filled on the right (spec: "Text the gateway sends is ASCII")."""
    # One "?" per code point, before cutting, so the cut is at the same place as the original text's.
    # Control characters are replaced too: a tab or newline inside a fixed-width slot would break
    # the layout on a bank's screen or printer.
    # On ASCII text str.isprintable() is exactly the range 0x20-0x7E: the usual slot is checked in C.
    clean = text if text.isascii() and text.isprintable() else "".join(c if c in _PRINTABLE else "?" for c in text)
    return clean[:width].ljust(width)


def num(value: int, width: int) -> str:
    """`value` right-justified and zero-filled to `width`; ValueError if it is negative or too wide."""
    # bool is an int subclass; True must not become "1".
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{value} is negative: numeric slots are unsigned")
    text = str(value)
    if len(text) > width:
        raise ValueError(f"{value} does not fit in {width} digits")
    return text.zfill(width)


def pbb_profile(bill: BillView, amount: Amount, other_unpaid_years: tuple[int, ...]) -> str:
    """The 287-character PBB-P2 bill profile of field 62.

    `other_unpaid_years` is taken as given (newest first, gateway.domain.bills.other_unpaid_years);
    the first five fill the slots, unused slots are "0000".
    """
    return _render(_PBB_LAYOUT, {
        "nop": bill.nop,
        "tax_year": bill.tax_year,
        "taxpayer_name": bill.taxpayer_name,
        "object_address": bill.object_address,
        "kelurahan": bill.kelurahan,
        "kecamatan": bill.kecamatan,
        "region": bill.region,
        "land_area": bill.land_area,
        "building_area": bill.building_area,
        "due_date": bill.due_date,
        "principal": amount.principal,
        "penalty": amount.penalty,
        "total": amount.total,
        "months_late": amount.months_late,
        "other_unpaid_years": tuple(other_unpaid_years),
    })


def bphtb_profile(bill: BillView, amount: Amount) -> str:
    """The 312-character BPHTB bill profile of field 62.

    Optional data the import may lack (NIK, acquisition type and value, PPAT) is shown as spaces or
    zeros; the registration number and valid-until date are always there for a BPHTB bill.
    """
    if bill.registration_number is None:
        raise ValueError("a BPHTB profile needs the registration number")
    return _render(_BPHTB_LAYOUT, {
        "registration_number": bill.registration_number,
        "nop": bill.nop,
        "tax_year": bill.tax_year,
        "taxpayer_name": bill.taxpayer_name,
        "nik_masked": _masked_nik(bill.nik_masked),
        "object_address": bill.object_address,
        "kelurahan": bill.kelurahan,
        "kecamatan": bill.kecamatan,
        "acquisition_type": bill.acquisition_type or 0,
        "acquisition_value": bill.acquisition_value or 0,
        "land_area": bill.land_area,
        "building_area": bill.building_area,
        "ppat_name": bill.ppat_name or "",
        "valid_until": bill.valid_until,
        "principal": amount.principal,
        "penalty": amount.penalty,
        "total": amount.total,
    })


def parse_pbb_profile(text: str) -> dict[str, Any]:
    """The slots of a PBB profile by key: ints for numbers, `date` for the due date, text without its
    space fill, other_unpaid_years as a list of ints without the empty ("0000") slots."""
    return _parse(_PBB_LAYOUT, text)


def parse_bphtb_profile(text: str) -> dict[str, Any]:
    """The slots of a BPHTB profile by key (as parse_pbb_profile)."""
    return _parse(_BPHTB_LAYOUT, text)


def original_data(mti: str, stan: str, transmitted: str, acquirer: str, forwarding: str = "") -> str:
    """Field 90: original MTI (4) + STAN (6) + field 7 (10) + acquirer (11) + forwarding (11), where
    the institution codes are right-justified, zero-filled, and forwarding is zeros when none."""
    for name, value, low, high in (
        ("mti", mti, 4, 4),
        ("stan", stan, 6, 6),
        ("transmitted", transmitted, 10, 10),
        ("acquirer", acquirer, 1, 11),
    ):
        if not _is_digits(value, low, high):
            raise ValueError(f"{name} must be {low}..{high} digits, got {value!r}")
    if forwarding and not _is_digits(forwarding, 1, 11):
        raise ValueError(f"forwarding must be up to 11 digits, got {forwarding!r}")
    return mti + stan + transmitted + acquirer.zfill(11) + (forwarding or "").zfill(11)


def parse_original_data(f90: str) -> tuple[str, str, str, str, str]:
    """(mti, stan, transmitted, acquirer, forwarding) of field 90, each as its zero-filled digits;
    ValueError unless it is exactly 42 ASCII digits."""
    if not _is_digits(f90, 42, 42):
        raise ValueError(f"field 90 must be 42 digits, got {f90!r}")
    return f90[0:4], f90[4:10], f90[10:20], f90[20:31], f90[31:42]


def mask_pan(pan: str) -> str:
    """Field 2 for the message log: first 6 and last 4 kept, one "*" per hidden character.

    A PAN of 10 characters or fewer would be shown whole that way, so all but the last 4 are hidden
    (and all of a PAN of 4 or fewer).
    """
    if len(pan) > 10:
        return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    if len(pan) > 4:
        return "*" * (len(pan) - 4) + pan[-4:]
    return "*" * len(pan)


# --- private ---------------------------------------------------------------------------------------


def _is_digits(text: Any, low: int, high: int) -> bool:
    return isinstance(text, str) and low <= len(text) <= high and _DIGITS.issuperset(text)


def _masked_nik(nik: str | None) -> str:
    # Masked again here although BillView should already hold the masked form: the profile goes to
    # the bank and into the message log, so a full NIK must not be able to slip through. Masking
    # is idempotent on an already masked NIK.
    if not nik:
        return ""
    if len(nik) != 16:
        raise ValueError(f"NIK must be 16 characters, got {len(nik)}")
    return nik[:6] + "******" + nik[-4:]


def _render(layout: tuple, values: dict[str, Any]) -> str:
    parts = []
    for key, width, kind in layout:
        value = values[key]
        try:
            parts.append(_render_slot(value, width, kind))
        except ValueError as exc:
            raise ValueError(f"profile slot {key}: {exc}") from None
    return "".join(parts)


def _render_slot(value: Any, width: int, kind: str) -> str:
    if kind == "an":
        return ascii_text(value, width)
    if kind == "n":
        return num(value, width)
    if kind == "id":
        if not _is_digits(value, width, width):
            raise ValueError(f"must be exactly {width} digits, got {value!r}")
        return value
    if kind == "date":
        if not isinstance(value, date):
            raise ValueError(f"expected a date, got {value!r}")
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    assert kind == "years", kind
    years = list(value[:_YEAR_SLOTS])
    if any(isinstance(y, bool) or not isinstance(y, int) or not 1 <= y <= 9999 for y in years):
        # 0 would read back as an empty slot.
        raise ValueError(f"years must be ints in 1..9999, got {years!r}")
    return "".join(num(y, 4) for y in years) + "0000" * (_YEAR_SLOTS - len(years))


def _parse(layout: tuple, text: str) -> dict[str, Any]:
    expected = sum(width for _, width, _ in layout)
    if not isinstance(text, str) or len(text) != expected:
        raise ValueError(f"profile must be a str of {expected} characters, got {text!r}")
    out: dict[str, Any] = {}
    pos = 0
    for key, width, kind in layout:
        slot = text[pos : pos + width]
        pos += width
        if kind == "an":
            out[key] = slot.rstrip(" ")
            continue
        if not _is_digits(slot, width, width):
            raise ValueError(f"profile slot {key} must be digits, got {slot!r}")
        if kind == "id":
            out[key] = slot
        elif kind == "n":
            out[key] = int(slot)
        elif kind == "date":
            out[key] = date(int(slot[:4]), int(slot[4:6]), int(slot[6:]))
        else:
            slots = (int(slot[i : i + 4]) for i in range(0, width, 4))
            out[key] = [year for year in slots if year]
    return out
