"""Row validation of the bill CSV import (gateway.bills.rows): pure, no database."""
import datetime

import pytest

from gateway.bills.importer import ImportFileError, check_header
from gateway.bills.rows import (
    BPHTB_COLUMNS,
    PBB_COLUMNS,
    STAGING_COLUMNS,
    BphtbRowValidator,
    PbbRowValidator,
    validator_for,
)
from gateway.domain.bills import pbb_bill_key
from gateway.domain.sspd import make_registration

NOP = "327501000100100010"
DISPLAY = "32.75.010.001.001-0001.0"
REG = make_registration(2026, 11, 123)          # 20261100012356 (domain.md's example)

PBB_ROW = {
    "nop": NOP, "tax_year": "2026", "taxpayer_name": "SITI AMINAH", "object_address": "JL. MERDEKA NO. 5",
    "kelurahan": "JATIBENING", "kecamatan": "PONDOKGEDE", "land_area": "120", "building_area": "90",
    "amount": "150000", "due_date": "2026-08-31", "status": "",
}
BPHTB_ROW = {
    "registration_number": REG, "nop": NOP, "tax_year": "2026", "taxpayer_name": "BUDI SANTOSO",
    "nik": "3275012505800001", "object_address": "JL. MAWAR NO. 1", "kelurahan": "JATIBENING",
    "kecamatan": "PONDOKGEDE", "acquisition_type": "01", "acquisition_value": "500000000",
    "land_area": "120", "building_area": "90", "ppat_name": "PPAT RINA MARLINA, S.H.", "amount": "21000000",
    "penalty": "", "valid_until": "2026-12-31", "status": "unpaid",
}


def pbb(**changes):
    record, errors = PbbRowValidator("3275").check_mapping({**PBB_ROW, **changes}, 2)
    return record, errors


def pbb_errors(**changes):
    record, errors = pbb(**changes)
    assert record is None
    return errors


def bphtb(**changes):
    return BphtbRowValidator("3275").check_mapping({**BPHTB_ROW, **changes}, 2)


def bphtb_errors(**changes):
    record, errors = bphtb(**changes)
    assert record is None
    return errors


def as_dict(record):
    return dict(zip(STAGING_COLUMNS, record))


# --- PBB: valid rows -----------------------------------------------------------------------------


def test_valid_pbb_row_becomes_a_staging_record():
    record, errors = pbb()
    assert errors == []
    assert record == (2, NOP + "2026", NOP, 2026, "SITI AMINAH", "JL. MERDEKA NO. 5", "JATIBENING", "PONDOKGEDE",
                      120, 90, 150000, 0, datetime.date(2026, 8, 31), None, None, None, None, None, "unpaid")


def test_display_form_nop_and_the_fast_path_give_the_domain_key():
    plain, _ = pbb()
    display, _ = pbb(nop=DISPLAY)
    spaced, _ = pbb(nop=f"  {NOP} ")
    assert plain[1:3] == display[1:3] == spaced[1:3] == (pbb_bill_key(NOP, 2026), NOP)


def test_text_is_trimmed_and_inner_whitespace_folded():
    record, _ = pbb(taxpayer_name="  SITI   AMINAH ", object_address="JL. MERDEKA\r\nNO. 5\t", kelurahan="")
    row = as_dict(record)
    assert (row["taxpayer_name"], row["object_address"], row["kelurahan"]) == ("SITI AMINAH", "JL. MERDEKA NO. 5", "")


@pytest.mark.parametrize("given,expected", [("", "unpaid"), ("unpaid", "unpaid"), ("paid", "paid"),
                                            ("cancelled", "cancelled"), (" PAID ", "paid")])
def test_status(given, expected):
    assert as_dict(pbb(status=given)[0])["status"] == expected


def test_empty_areas_are_zero():
    row = as_dict(pbb(land_area="", building_area=" ")[0])
    assert (row["land_area"], row["building_area"]) == (0, 0)


def test_amount_with_leading_zeros_and_spaces():
    assert as_dict(pbb(amount=" 000150000 ")[0])["principal"] == 150000


# --- PBB: one reason per bad column --------------------------------------------------------------


@pytest.mark.parametrize("column,value,reason", [
    ("nop", "", "must not be empty"),
    ("nop", "32750100010010001", "must have 18 digits, got 17"),
    ("nop", "32.75.010.001.001-0001.X", "must contain only digits, dots, dashes and spaces"),
    ("nop", "320101000100100010", "is in region 3201, this gateway serves 3275"),
    ("nop", "32.01.010.001.001-0001.0", "is in region 3201, this gateway serves 3275"),
    ("tax_year", "", "must not be empty"),
    ("tax_year", "26", "must be a 4-digit year"),
    ("tax_year", "0999", "must be a 4-digit year"),
    ("taxpayer_name", "", "must not be empty"),
    ("taxpayer_name", "   ", "must not be empty"),
    ("taxpayer_name", "A" * 201, "longer than 200 characters"),
    ("taxpayer_name", "SITI\x00AMINAH", "contains control characters"),
    ("object_address", "JL. \u200bMERDEKA", "contains control characters"),
    ("kelurahan", "K" * 201, "longer than 200 characters"),
    ("land_area", "-5", "must not be negative"),
    ("land_area", "12.5", "must be a whole number of square metres"),
    ("building_area", "1" * 13, "too large"),
    ("amount", "", "must not be empty"),
    ("amount", "0", "must be greater than 0"),
    ("amount", "-100", "must be a whole number of rupiah"),
    ("amount", "150.000", "must be a whole number of rupiah"),
    ("amount", "9" * 20, "too large"),
    ("due_date", "", "must not be empty"),
    ("due_date", "31-08-2026", "must be a date YYYY-MM-DD"),
    ("due_date", "20260831", "must be a date YYYY-MM-DD"),
    ("due_date", "2026-02-30", "no such date"),
    ("status", "lunas", "must be unpaid, paid or cancelled"),
])
def test_pbb_bad_column(column, value, reason):
    assert pbb_errors(**{column: value}) == [(column, reason)]


def test_every_bad_column_is_reported():
    assert pbb_errors(tax_year="x", amount="0", status="?") == [
        ("tax_year", "must be a 4-digit year"),
        ("amount", "must be greater than 0"),
        ("status", "must be unpaid, paid or cancelled"),
    ]


def test_validator_refuses_a_bad_region_code():
    with pytest.raises(ValueError):
        PbbRowValidator("32")


# --- duplicates ----------------------------------------------------------------------------------


def test_second_row_for_the_same_bill_is_a_duplicate_even_in_display_form():
    v = PbbRowValidator("3275")
    assert v.check_mapping(PBB_ROW, 2)[1] == []
    assert v.check_mapping({**PBB_ROW, "tax_year": "2025"}, 3)[1] == []       # another year: another bill
    record, errors = v.check_mapping({**PBB_ROW, "nop": DISPLAY, "amount": "1"}, 7)
    assert record is None and errors == [("nop", "duplicate of line 2")]


def test_a_key_counts_as_seen_even_when_its_first_row_was_invalid():
    v = PbbRowValidator("3275")
    assert v.check_mapping({**PBB_ROW, "amount": "0"}, 2)[1] == [("amount", "must be greater than 0")]
    assert v.check_mapping(PBB_ROW, 3)[1] == [("nop", "duplicate of line 2")]


def test_duplicate_is_reported_with_the_other_bad_columns():
    v = PbbRowValidator("3275")
    v.check_mapping(PBB_ROW, 2)
    assert v.check_mapping({**PBB_ROW, "status": "x"}, 3)[1] == [
        ("status", "must be unpaid, paid or cancelled"), ("nop", "duplicate of line 2")]


def test_bphtb_duplicate_registration_number():
    v = BphtbRowValidator("3275")
    assert v.check_mapping(BPHTB_ROW, 2)[1] == []
    assert v.check_mapping({**BPHTB_ROW, "nop": "327501000100100020"}, 4)[1] == [
        ("registration_number", "duplicate of line 2")]


# --- BPHTB ---------------------------------------------------------------------------------------


def test_valid_bphtb_row_becomes_a_staging_record():
    record, errors = bphtb()
    assert errors == []
    assert record == (2, "20261100012356", NOP, 2026, "BUDI SANTOSO", "JL. MAWAR NO. 1", "JATIBENING", "PONDOKGEDE",
                      120, 90, 21000000, 0, None, datetime.date(2026, 12, 31), "3275012505800001", 1, 500000000,
                      "PPAT RINA MARLINA, S.H.", "unpaid")


def test_bphtb_penalty_and_type_without_leading_zero():
    row = as_dict(bphtb(penalty="420000", acquisition_type="5")[0])
    assert (row["penalty"], row["acquisition_type"]) == (420000, 5)


@pytest.mark.parametrize("column,value,reason", [
    ("registration_number", "", "must not be empty"),
    ("registration_number", "20261100012357", "wrong check digits"),
    ("registration_number", "2026110001235", "must be 14 digits"),
    ("registration_number", "20261300012356", "month part must be 01..12"),
    ("nik", "", "must not be empty"),
    ("nik", "327501250580000", "must be 16 digits"),
    ("nik", "32750125058000A1", "must be 16 digits"),
    ("acquisition_type", "", "must not be empty"),
    ("acquisition_type", "0", "must be a number 01..14"),
    ("acquisition_type", "15", "must be a number 01..14"),
    ("acquisition_type", "001", "must be a number 01..14"),
    ("acquisition_value", "", "must not be empty"),
    ("acquisition_value", "5e8", "must be a whole number of rupiah"),
    ("amount", "0", "must be greater than 0"),
    ("penalty", "-1", "must be a whole number of rupiah"),
    ("valid_until", "2026-13-01", "no such date"),
    ("valid_until", "", "must not be empty"),
    ("nop", "320101000100100010", "is in region 3201, this gateway serves 3275"),
    ("tax_year", "20261", "must be a 4-digit year"),
    ("status", "PAID?", "must be unpaid, paid or cancelled"),
])
def test_bphtb_bad_column(column, value, reason):
    assert bphtb_errors(**{column: value}) == [(column, reason)]


def test_acquisition_value_may_be_zero():
    assert as_dict(bphtb(acquisition_value="0")[0])["acquisition_value"] == 0


def test_validator_for():
    assert isinstance(validator_for("pbb", "3275"), PbbRowValidator)
    assert isinstance(validator_for("BPHTB", "3275"), BphtbRowValidator)
    with pytest.raises(ValueError):
        validator_for("pkb", "3275")


# --- header --------------------------------------------------------------------------------------


def test_header_in_any_order_maps_columns():
    header = list(reversed(PBB_COLUMNS))
    positions = check_header("f.csv", header, PBB_COLUMNS)
    assert [header[i] for i in positions] == list(PBB_COLUMNS)


def test_header_names_are_trimmed():
    assert check_header("f.csv", [f" {c} " for c in BPHTB_COLUMNS], BPHTB_COLUMNS) == list(range(17))


@pytest.mark.parametrize("header,problem", [
    ([*PBB_COLUMNS, "note"], "unknown column(s) 'note'"),
    ([c for c in PBB_COLUMNS if c not in ("amount", "status")], "missing column(s) amount, status"),
    (["NOP", *PBB_COLUMNS[1:]], "unknown column(s) 'NOP'; missing column(s) nop"),
    ([*PBB_COLUMNS, "amount"], "duplicate column(s) amount"),
])
def test_wrong_header(header, problem):
    with pytest.raises(ImportFileError) as exc:
        check_header("bills.csv", header, PBB_COLUMNS)
    assert str(exc.value) == f"bills.csv:1: wrong header: {problem} (expected {','.join(PBB_COLUMNS)})"
