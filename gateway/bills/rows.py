"""Validation of one bill CSV row (spec/operations.md "CSV files"): pure, no database.

A validator turns the text fields of a row into a *staging record* (a plain tuple in the order of
``STAGING_COLUMNS``, ready for binary COPY) or into a list of ``(column, reason)`` errors, one per bad
column. It also remembers the keys it has seen, so the second row for the same bill in one file is
refused as ``duplicate of line N``.

The happy path runs once per row of files with millions of rows, so it is written for speed: no
regular expressions where a str method does, small caches for the few distinct years, dates and
statuses a file has, and exceptions only on the error path.
"""
from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from gateway.domain.errors import FormatError
from gateway.domain.money import parse_amount
from gateway.domain.nop import in_region, parse_nop, parse_tax_year
from gateway.domain.sspd import parse_registration

PBB_COLUMNS: tuple[str, ...] = (
    "nop", "tax_year", "taxpayer_name", "object_address", "kelurahan", "kecamatan",
    "land_area", "building_area", "amount", "due_date", "status",
)
BPHTB_COLUMNS: tuple[str, ...] = (
    "registration_number", "nop", "tax_year", "taxpayer_name", "nik", "object_address", "kelurahan",
    "kecamatan", "acquisition_type", "acquisition_value", "land_area", "building_area", "ppat_name",
    "amount", "penalty", "valid_until", "status",
)

# The staging table's columns, in the order of the tuples the validators (and the demo seed) produce.
STAGING_COLUMNS: tuple[str, ...] = (
    "line", "bill_key", "nop", "tax_year", "taxpayer_name", "object_address", "kelurahan", "kecamatan",
    "land_area", "building_area", "principal", "penalty", "due_date", "valid_until", "nik",
    "acquisition_type", "acquisition_value", "ppat_name", "status",
)

MAX_TEXT = 200          # characters, after trimming, for names and addresses
MAX_AREA_DIGITS = 12    # square metres: a 12-digit area is already larger than any region
# Amounts must fit the ISO 8583 slots the bill is shown in (fields 4 and 62): 12 digits, NPOP 15.
MAX_AMOUNT_DIGITS = 12
MAX_VALUE_DIGITS = 15
ACQUISITION_TYPES = range(1, 15)   # BPHTB jenis perolehan 01..14

EMPTY = "must not be empty"
STATUS_REASON = "must be unpaid, paid or cancelled"
DATE_REASON = "must be a date YYYY-MM-DD"
AREA_REASON = "must be a whole number of square metres"
NIK_REASON = "must be 16 digits"
ACQUISITION_TYPE_REASON = "must be a number 01..14"

_STATUSES = {"": "unpaid", "unpaid": "unpaid", "paid": "paid", "cancelled": "cancelled"}


def clean_text(value: str, column: str, errors: list, *, required: bool = False) -> str:
    """Trim, fold inner whitespace (a quoted field may span lines) and check length and controls."""
    text = value.strip()
    if not text.isprintable() or "  " in text:
        # Line breaks, tabs, runs of spaces, no-break spaces: one space each. What is still not
        # printable after that (C0 controls, zero-width and other format characters) is refused.
        text = " ".join(text.split())
        if not text.isprintable():
            errors.append((column, "contains control characters"))
            return text
    if not text:
        if required:
            errors.append((column, EMPTY))
    elif len(text) > MAX_TEXT:
        errors.append((column, f"longer than {MAX_TEXT} characters"))
    return text


def parse_area(value: str, column: str, errors: list) -> int:
    """Square metres, a whole number >= 0; empty means 0."""
    if value.isdigit() and value.isascii() and len(value) <= MAX_AREA_DIGITS:
        return int(value)       # the common case, without copies
    text = value.strip()
    if not text:
        return 0
    if text.isascii() and text.isdigit():
        if len(text.lstrip("0")) > MAX_AREA_DIGITS:
            errors.append((column, "too large"))
            return 0
        return int(text)
    if text[0] == "-" and text[1:].isascii() and text[1:].isdigit():
        errors.append((column, "must not be negative"))
    else:
        errors.append((column, AREA_REASON))
    return 0


class _Validator:
    """Shared state of the PBB and BPHTB validators: region, caches and the keys seen so far."""

    tax: str
    columns: tuple[str, ...]
    key_column: str

    def __init__(self, region_code: str) -> None:
        if not (len(region_code) == 4 and region_code.isascii() and region_code.isdigit()):
            raise ValueError(f"region code must be 4 digits, got {region_code!r}")
        self.region_code = region_code
        # Key -> line of its first row. Keys are digit strings; held as ints they take half the memory
        # (a million-row file: ~35 MB less).
        self.seen: dict[int, int] = {}
        self._years: dict[str, int] = {}
        self._dates: dict[str, datetime.date] = {}

    # -- field parsers that record errors instead of raising -------------------------------------

    def _nop(self, value: str, errors: list) -> str | None:
        if len(value) == 18 and value.isdigit() and value.isascii():
            # Already the plain form: what parse_nop would return. Skipping it (and in_region's own
            # re-validation) saves a third of the validation time of a million-row file.
            if value.startswith(self.region_code):
                return value
            errors.append(("nop", f"is in region {value[:4]}, this gateway serves {self.region_code}"))
            return None
        text = value.strip()
        if not text:
            errors.append(("nop", EMPTY))
            return None
        try:
            nop = parse_nop(text)
        except FormatError as exc:
            errors.append(("nop", exc.reason))
            return None
        if not in_region(nop, self.region_code):
            errors.append(("nop", f"is in region {nop[:4]}, this gateway serves {self.region_code}"))
            return None
        return nop

    def _year(self, value: str, errors: list) -> int | None:
        year = self._years.get(value)
        if year is not None:
            return year
        text = value.strip()
        if not text:
            errors.append(("tax_year", EMPTY))
            return None
        try:
            year = parse_tax_year(text)
        except FormatError as exc:
            errors.append(("tax_year", exc.reason))
            return None
        if len(self._years) < 64:
            self._years[value] = year
        return year

    def _date(self, value: str, column: str, errors: list) -> datetime.date | None:
        day = self._dates.get(value)
        if day is not None:
            return day
        text = value.strip()
        if not text:
            errors.append((column, EMPTY))
            return None
        # fromisoformat alone would also take "20260831" or "2026-W35"; the file format is YYYY-MM-DD.
        if not (len(text) == 10 and text[4] == "-" and text[7] == "-" and text.isascii()
                and (text[:4] + text[5:7] + text[8:]).isdigit()):
            errors.append((column, DATE_REASON))
            return None
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            errors.append((column, "no such date"))
            return None
        if len(self._dates) < 4096:
            self._dates[value] = day
        return day

    @staticmethod
    def _money(value: str, column: str, errors: list, *, positive: bool, empty_zero: bool = False,
               max_digits: int = MAX_AMOUNT_DIGITS) -> int:
        if value.isdigit() and value.isascii() and len(value) <= max_digits:
            amount = int(value)     # what parse_amount returns for plain digits
            if amount or not positive:
                return amount
        text = value.strip()
        if not text:
            if empty_zero:
                return 0
            errors.append((column, EMPTY))
            return 0
        try:
            amount = parse_amount(text, column)
        except FormatError as exc:
            errors.append((column, exc.reason))
            return 0
        if amount >= 10 ** max_digits:
            errors.append((column, f"more than {max_digits} digits"))
            return 0
        if positive and amount == 0:
            errors.append((column, "must be greater than 0"))
        return amount

    @staticmethod
    def _status(value: str, errors: list) -> str:
        status = _STATUSES.get(value)
        if status is None:
            status = _STATUSES.get(value.strip().lower())
            if status is None:
                errors.append(("status", STATUS_REASON))
                return ""
        return status

    def _remember(self, key: str, line: int, errors: list) -> None:
        number = int(key)
        first = self.seen.get(number)
        if first is None:
            self.seen[number] = line
        else:
            errors.append((self.key_column, f"duplicate of line {first}"))

    # -- public ----------------------------------------------------------------------------------

    def check(self, values: Sequence[str], line: int) -> tuple[tuple | None, list]:
        """``values`` in the order of ``columns``; returns (staging record, []) or (None, errors)."""
        raise NotImplementedError

    def check_mapping(self, row: Mapping[str, str], line: int) -> tuple[tuple | None, list]:
        """Convenience for callers holding a dict (tests): missing columns count as empty."""
        return self.check([row.get(c, "") for c in self.columns], line)


class PbbRowValidator(_Validator):
    tax = "PBB"
    columns = PBB_COLUMNS
    key_column = "nop"

    def check(self, values: Sequence[str], line: int) -> tuple[tuple | None, list]:
        nop_s, year_s, name_s, address_s, kel_s, kec_s, land_s, building_s, amount_s, due_s, status_s = values
        errors: list = []
        nop = self._nop(nop_s, errors)
        year = self._year(year_s, errors)
        name = clean_text(name_s, "taxpayer_name", errors, required=True)
        address = clean_text(address_s, "object_address", errors)
        kelurahan = clean_text(kel_s, "kelurahan", errors)
        kecamatan = clean_text(kec_s, "kecamatan", errors)
        land = parse_area(land_s, "land_area", errors)
        building = parse_area(building_s, "building_area", errors)
        amount = self._money(amount_s, "amount", errors, positive=True)
        due = self._date(due_s, "due_date", errors)
        status = self._status(status_s, errors)
        key = None
        if nop is not None and year is not None:
            key = nop + f"{year:04d}"   # pbb_bill_key(nop, year), without validating both again
            self._remember(key, line, errors)
        if errors:
            return None, errors
        return (line, key, nop, year, name, address, kelurahan, kecamatan, land, building, amount, 0,
                due, None, None, None, None, None, status), errors


class BphtbRowValidator(_Validator):
    tax = "BPHTB"
    columns = BPHTB_COLUMNS
    key_column = "registration_number"

    def check(self, values: Sequence[str], line: int) -> tuple[tuple | None, list]:
        (reg_s, nop_s, year_s, name_s, nik_s, address_s, kel_s, kec_s, type_s, value_s, land_s,
         building_s, ppat_s, amount_s, penalty_s, valid_s, status_s) = values
        errors: list = []
        registration = None
        text = reg_s.strip()
        if not text:
            errors.append(("registration_number", EMPTY))
        else:
            try:
                registration = parse_registration(text)
            except FormatError as exc:
                errors.append(("registration_number", exc.reason))
        nop = self._nop(nop_s, errors)
        year = self._year(year_s, errors)
        name = clean_text(name_s, "taxpayer_name", errors, required=True)
        nik = nik_s.strip()
        if not nik:
            errors.append(("nik", EMPTY))
        elif not (len(nik) == 16 and nik.isascii() and nik.isdigit()):
            errors.append(("nik", NIK_REASON))
        address = clean_text(address_s, "object_address", errors)
        kelurahan = clean_text(kel_s, "kelurahan", errors)
        kecamatan = clean_text(kec_s, "kecamatan", errors)
        acquisition_type = None
        text = type_s.strip()
        if not text:
            errors.append(("acquisition_type", EMPTY))
        elif text.isascii() and text.isdigit() and len(text) <= 2 and int(text) in ACQUISITION_TYPES:
            acquisition_type = int(text)
        else:
            errors.append(("acquisition_type", ACQUISITION_TYPE_REASON))
        acquisition_value = self._money(value_s, "acquisition_value", errors, positive=False,
                                        max_digits=MAX_VALUE_DIGITS)
        land = parse_area(land_s, "land_area", errors)
        building = parse_area(building_s, "building_area", errors)
        ppat = clean_text(ppat_s, "ppat_name", errors)
        amount = self._money(amount_s, "amount", errors, positive=True)
        penalty = self._money(penalty_s, "penalty", errors, positive=False, empty_zero=True)
        valid_until = self._date(valid_s, "valid_until", errors)
        status = self._status(status_s, errors)
        if registration is not None:
            self._remember(registration, line, errors)
        if errors:
            return None, errors
        return (line, registration, nop, year, name, address, kelurahan, kecamatan, land, building, amount,
                penalty, None, valid_until, nik, acquisition_type, acquisition_value, ppat, status), errors


def validator_for(tax: str, region_code: str) -> _Validator:
    """The validator of ``tax`` ("pbb" / "bphtb", any case)."""
    kind = tax.upper()
    if kind == "PBB":
        return PbbRowValidator(region_code)
    if kind == "BPHTB":
        return BphtbRowValidator(region_code)
    raise ValueError(f"unknown tax {tax!r}: expected pbb or bphtb")
