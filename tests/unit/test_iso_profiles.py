"""gateway.iso8583.profiles: field 62 layouts, field 90, PAN masking (spec/iso8583.md "Field 62")."""
import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.iso8583.profiles import (
    ascii_text,
    bphtb_profile,
    mask_pan,
    num,
    original_data,
    parse_bphtb_profile,
    parse_original_data,
    parse_pbb_profile,
    pbb_profile,
)
from gateway.service.results import Amount, BillView

PBB_BILL = BillView(
    tax="PBB", bill_key="3275010001001000102024", nop="327501000100100010", tax_year=2024,
    taxpayer_name="BUDI SANTOSO", object_address="JL. MERDEKA NO. 17", kelurahan="MARGAHAYU",
    kecamatan="BEKASI TIMUR", region="KOTA BEKASI", land_area=120, building_area=72,
    status="unpaid", principal=350_000, due_date=date(2024, 8, 31),
)  # fmt: skip
PBB_AMOUNT = Amount(principal=350_000, penalty=7_000, total=357_000, months_late=1)

BPHTB_BILL = BillView(
    tax="BPHTB", bill_key="20240300001261", nop="327501000100100010", tax_year=2024,
    taxpayer_name="SITI AMINAH", object_address="PERUM GRIYA ASRI BLOK C2", kelurahan="MARGAHAYU",
    kecamatan="BEKASI TIMUR", region="KOTA BEKASI", land_area=96, building_area=45,
    status="unpaid", principal=12_500_000, registration_number="20240300001261",
    nik_masked="327501******0004", acquisition_type=1, acquisition_value=750_000_000,
    ppat_name="NOTARIS RINA WULANDARI, S.H.", valid_until=date(2024, 4, 30),
)  # fmt: skip
BPHTB_AMOUNT = Amount(principal=12_500_000, penalty=0, total=12_500_000)


def _slices(text: str, widths: list[int]) -> list[str]:
    out, pos = [], 0
    for width in widths:
        out.append(text[pos : pos + width])
        pos += width
    assert pos == len(text)
    return out


# --- helpers ---------------------------------------------------------------------------------------


def test_ascii_text():
    assert ascii_text("Budi", 6) == "Budi  "
    assert ascii_text("Budi Santoso", 4) == "Budi"
    assert ascii_text("Ñoño\tX", 8) == "?o?o?X  "
    assert ascii_text("", 3) == "   "
    assert ascii_text("🙂 ab", 4) == "? ab"  # one "?" per character, not per byte


def test_num():
    assert num(125, 6) == "000125"
    assert num(0, 2) == "00"
    assert num(999_999, 6) == "999999"
    for bad in (1_000_000, -1, True, 1.0, "125"):
        with pytest.raises(ValueError):
            num(bad, 6)  # type: ignore[arg-type]


# --- PBB -------------------------------------------------------------------------------------------

PBB_WIDTHS = [18, 4, 35, 35, 35, 35, 35, 12, 12, 8, 12, 12, 12, 2, 20]


def test_pbb_profile_slot_by_slot():
    text = pbb_profile(PBB_BILL, PBB_AMOUNT, (2023, 2021))
    assert len(text) == 287
    assert _slices(text, PBB_WIDTHS) == [
        "327501000100100010",
        "2024",
        "BUDI SANTOSO".ljust(35),
        "JL. MERDEKA NO. 17".ljust(35),
        "MARGAHAYU".ljust(35),
        "BEKASI TIMUR".ljust(35),
        "KOTA BEKASI".ljust(35),
        "000000000120",
        "000000000072",
        "20240831",
        "000000350000",
        "000000007000",
        "000000357000",
        "01",
        "20232021000000000000",
    ]


def test_pbb_profile_parses_back():
    text = pbb_profile(PBB_BILL, PBB_AMOUNT, (2023, 2021))
    assert parse_pbb_profile(text) == {
        "nop": "327501000100100010", "tax_year": 2024, "taxpayer_name": "BUDI SANTOSO",
        "object_address": "JL. MERDEKA NO. 17", "kelurahan": "MARGAHAYU", "kecamatan": "BEKASI TIMUR",
        "region": "KOTA BEKASI", "land_area": 120, "building_area": 72, "due_date": date(2024, 8, 31),
        "principal": 350_000, "penalty": 7_000, "total": 357_000, "months_late": 1,
        "other_unpaid_years": [2023, 2021],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("years", "slot"),
    [
        ((), "0" * 20),
        ((2024, 2023, 2022, 2021, 2020), "20242023202220212020"),
        ((2025, 2024, 2023, 2022, 2021, 2020), "20252024202320222021"),  # the newest five, as given
    ],
)
def test_pbb_other_unpaid_years(years, slot):
    text = pbb_profile(PBB_BILL, PBB_AMOUNT, years)
    assert text[-20:] == slot
    assert parse_pbb_profile(text)["other_unpaid_years"] == list(years[:5])


def test_pbb_non_ascii_and_long_names():
    bill = dataclasses.replace(PBB_BILL, taxpayer_name="JOSÉ ÑOÑO", region="K" * 50)
    text = pbb_profile(bill, PBB_AMOUNT, ())
    assert len(text) == 287
    assert text[22:57] == "JOS? ?O?O".ljust(35)
    assert text[162:197] == "K" * 35


@pytest.mark.parametrize(
    ("bill", "amount", "years"),
    [
        (PBB_BILL, dataclasses.replace(PBB_AMOUNT, total=10**12), ()),
        (PBB_BILL, dataclasses.replace(PBB_AMOUNT, months_late=100), ()),
        (PBB_BILL, dataclasses.replace(PBB_AMOUNT, penalty=-1), ()),
        (dataclasses.replace(PBB_BILL, land_area=10**12), PBB_AMOUNT, ()),
        (dataclasses.replace(PBB_BILL, tax_year=10_000), PBB_AMOUNT, ()),
        (dataclasses.replace(PBB_BILL, nop="32750100010010001"), PBB_AMOUNT, ()),
        (dataclasses.replace(PBB_BILL, nop="32.75.010.001.001-0001.0"), PBB_AMOUNT, ()),
        (dataclasses.replace(PBB_BILL, due_date=None), PBB_AMOUNT, ()),
        (PBB_BILL, PBB_AMOUNT, (0,)),
        (PBB_BILL, PBB_AMOUNT, (20240,)),
    ],
)
def test_pbb_values_that_do_not_fit_raise(bill, amount, years):
    with pytest.raises(ValueError):
        pbb_profile(bill, amount, years)


# --- BPHTB -----------------------------------------------------------------------------------------

BPHTB_WIDTHS = [14, 18, 4, 35, 16, 35, 35, 35, 2, 15, 12, 12, 35, 8, 12, 12, 12]


def test_bphtb_profile_slot_by_slot():
    text = bphtb_profile(BPHTB_BILL, BPHTB_AMOUNT)
    assert len(text) == 312
    assert _slices(text, BPHTB_WIDTHS) == [
        "20240300001261",
        "327501000100100010",
        "2024",
        "SITI AMINAH".ljust(35),
        "327501******0004",
        "PERUM GRIYA ASRI BLOK C2".ljust(35),
        "MARGAHAYU".ljust(35),
        "BEKASI TIMUR".ljust(35),
        "01",
        "000000750000000",
        "000000000096",
        "000000000045",
        "NOTARIS RINA WULANDARI, S.H.".ljust(35),
        "20240430",
        "000012500000",
        "000000000000",
        "000012500000",
    ]


def test_bphtb_profile_parses_back():
    assert parse_bphtb_profile(bphtb_profile(BPHTB_BILL, BPHTB_AMOUNT)) == {
        "registration_number": "20240300001261", "nop": "327501000100100010", "tax_year": 2024,
        "taxpayer_name": "SITI AMINAH", "nik_masked": "327501******0004",
        "object_address": "PERUM GRIYA ASRI BLOK C2", "kelurahan": "MARGAHAYU", "kecamatan": "BEKASI TIMUR",
        "acquisition_type": 1, "acquisition_value": 750_000_000, "land_area": 96, "building_area": 45,
        "ppat_name": "NOTARIS RINA WULANDARI, S.H.", "valid_until": date(2024, 4, 30),
        "principal": 12_500_000, "penalty": 0, "total": 12_500_000,
    }  # fmt: skip


def test_bphtb_full_nik_is_masked_anyway():
    text = bphtb_profile(dataclasses.replace(BPHTB_BILL, nik_masked="3275010101900004"), BPHTB_AMOUNT)
    assert text[71:87] == "327501******0004"
    assert "3275010101900004" not in text


def test_bphtb_optional_data_missing():
    bill = dataclasses.replace(BPHTB_BILL, nik_masked=None, acquisition_type=None, acquisition_value=None,
                               ppat_name=None)
    fields = _slices(bphtb_profile(bill, BPHTB_AMOUNT), BPHTB_WIDTHS)
    assert fields[4] == " " * 16 and fields[8] == "00" and fields[9] == "0" * 15 and fields[12] == " " * 35


def test_bphtb_non_ascii_and_long_names():
    bill = dataclasses.replace(BPHTB_BILL, taxpayer_name="Ñ" + "A" * 40, ppat_name="NOTARIS ü")
    fields = _slices(bphtb_profile(bill, BPHTB_AMOUNT), BPHTB_WIDTHS)
    assert fields[3] == "?" + "A" * 34
    assert fields[12] == "NOTARIS ?".ljust(35)


@pytest.mark.parametrize(
    ("bill", "amount"),
    [
        (BPHTB_BILL, dataclasses.replace(BPHTB_AMOUNT, total=10**12)),
        (dataclasses.replace(BPHTB_BILL, acquisition_value=10**15), BPHTB_AMOUNT),
        (dataclasses.replace(BPHTB_BILL, acquisition_type=100), BPHTB_AMOUNT),
        (dataclasses.replace(BPHTB_BILL, registration_number=None), BPHTB_AMOUNT),
        (dataclasses.replace(BPHTB_BILL, registration_number="2024030000126"), BPHTB_AMOUNT),
        (dataclasses.replace(BPHTB_BILL, valid_until=None), BPHTB_AMOUNT),
        (dataclasses.replace(BPHTB_BILL, nik_masked="32750101"), BPHTB_AMOUNT),
    ],
)
def test_bphtb_values_that_do_not_fit_raise(bill, amount):
    with pytest.raises(ValueError):
        bphtb_profile(bill, amount)


@pytest.mark.parametrize("text", ["", "x" * 286, "x" * 288])
def test_parse_pbb_profile_wrong_length(text):
    with pytest.raises(ValueError):
        parse_pbb_profile(text)


def test_parse_profile_bad_digits_and_dates():
    good = pbb_profile(PBB_BILL, PBB_AMOUNT, ())
    with pytest.raises(ValueError):
        parse_pbb_profile(good[:209] + "X" + good[210:])  # inside the principal
    with pytest.raises(ValueError):
        parse_pbb_profile(good[:221] + "20241331" + good[229:])  # month 13
    with pytest.raises(ValueError):
        parse_bphtb_profile("x" * 312)


_NAMES = st.text(max_size=50)


@given(
    name=_NAMES, address=_NAMES, total=st.integers(0, 10**12 - 1),
    years=st.lists(st.integers(1000, 9999), max_size=7).map(tuple),
)  # fmt: skip
def test_pbb_profile_always_287_ascii_characters(name, address, total, years):
    bill = dataclasses.replace(PBB_BILL, taxpayer_name=name, object_address=address)
    text = pbb_profile(bill, dataclasses.replace(PBB_AMOUNT, total=total), years)
    assert len(text) == 287 and text.isascii() and text.isprintable()
    parsed = parse_pbb_profile(text)
    assert parsed["total"] == total and parsed["other_unpaid_years"] == list(years[:5])
    assert parsed["taxpayer_name"] == ascii_text(name, 35).rstrip(" ")


@given(name=_NAMES, ppat=_NAMES, value=st.integers(0, 10**15 - 1))
def test_bphtb_profile_always_312_ascii_characters(name, ppat, value):
    bill = dataclasses.replace(BPHTB_BILL, taxpayer_name=name, ppat_name=ppat, acquisition_value=value)
    text = bphtb_profile(bill, BPHTB_AMOUNT)
    assert len(text) == 312 and text.isascii() and text.isprintable()
    assert parse_bphtb_profile(text)["acquisition_value"] == value


# --- field 90 --------------------------------------------------------------------------------------


def test_original_data_layout():
    f90 = original_data("0200", "000123", "0415103000", "110")
    assert f90 == "0200" + "000123" + "0415103000" + "00000000110" + "00000000000"
    assert len(f90) == 42
    assert parse_original_data(f90) == ("0200", "000123", "0415103000", "00000000110", "00000000000")


def test_original_data_with_forwarding():
    f90 = original_data("0200", "000123", "0415103000", "110", "9876")
    assert f90[31:] == "00000009876"


@pytest.mark.parametrize(
    "args",
    [
        ("200", "000123", "0415103000", "110"),
        ("0200", "123", "0415103000", "110"),
        ("0200", "000123", "041510300", "110"),
        ("0200", "000123", "0415103000", ""),
        ("0200", "000123", "0415103000", "123456789012"),
        ("0200", "000123", "0415103000", "110", "12a"),
        ("0200", "00012X", "0415103000", "110"),
    ],
)
def test_original_data_refuses_bad_parts(args):
    with pytest.raises(ValueError):
        original_data(*args)


@pytest.mark.parametrize("f90", ["", "0" * 41, "0" * 43, "0" * 41 + "X", "0" * 41 + "٣"])
def test_parse_original_data_refuses_anything_but_42_digits(f90):
    with pytest.raises(ValueError):
        parse_original_data(f90)


_D = "0123456789"


@given(
    mti=st.text(_D, min_size=4, max_size=4), stan=st.text(_D, min_size=6, max_size=6),
    sent=st.text(_D, min_size=10, max_size=10), acquirer=st.text(_D, min_size=1, max_size=11),
    forwarding=st.text(_D, max_size=11),
)  # fmt: skip
def test_field_90_round_trip(mti, stan, sent, acquirer, forwarding):
    f90 = original_data(mti, stan, sent, acquirer, forwarding)
    assert parse_original_data(f90) == (mti, stan, sent, acquirer.zfill(11), forwarding.zfill(11))


# --- PAN -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("4111111111111111", "411111******1111"),
        ("5264221234567890123", "526422*********0123"),
        ("12345678901", "123456*8901"),
        ("1234567890", "******7890"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_pan(pan, masked):
    assert mask_pan(pan) == masked
