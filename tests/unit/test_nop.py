import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import FormatError, display_nop, in_region, nop_parts, parse_nop, parse_tax_year

NOP = "327501000100100010"
DISPLAY = "32.75.010.001.001-0001.0"

nops = st.text(alphabet="0123456789", min_size=18, max_size=18)


# --- parse ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        NOP,
        DISPLAY,
        "32 75 010 001 001 0001 0",
        "32-75-010-001-001-0001-0",
        "32.75.010.001.001 - 0001.0",
        "3275.0100.0100.1000.10",  # separators anywhere are just removed
        " 327501000100100010 ",
    ],
)
def test_parse_accepts_plain_and_display_forms(text):
    assert parse_nop(text) == NOP


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("32750100010010001", "17 digits"),
        ("3275010001001000100", "19 digits"),
        ("32.75.010.001.001-0001", "display form missing the type digit"),
        ("", "empty"),
        ("...---   ", "separators only"),
        ("32750100010010001A", "letter"),
        ("32750100010010001O", "letter O for zero"),
        ("٣٢٧٥٠١٠٠٠١٠٠١٠٠٠١٠", "Arabic-Indic digits"),
        ("32750100010010001٠", "one Arabic-Indic digit"),
        ("３２７５０１０００１００１０００１０", "fullwidth digits"),
        ("32750100010010001²", "superscript digit"),
        ("32\t75010001001000100", "tab is not a separator"),
        ("32_75_010_001_001_0001_0", "underscore is not a separator"),
        ("32–75–010–001–001–0001–0", "en dash is not a separator"),
        ("32.75.010.001.001-0001.0\n", "newline"),
        ("+32750100010010001", "sign"),
    ],
)
def test_parse_refuses(text, why):
    with pytest.raises(FormatError) as e:
        parse_nop(text)
    assert e.value.field == "nop", why


@pytest.mark.parametrize("value", [None, 327501000100100010, b"327501000100100010", ["327501000100100010"]])
def test_parse_refuses_non_text(value):
    with pytest.raises(FormatError):
        parse_nop(value)


@given(nops)
def test_display_parse_round_trip(nop):
    shown = display_nop(nop)
    assert len(shown) == 24
    assert parse_nop(shown) == nop
    assert parse_nop(nop) == nop


@given(nops, st.lists(st.sampled_from([".", "-", " "]), min_size=19, max_size=19))
def test_parse_ignores_any_separator_placement(nop, seps):
    text = "".join(s + d for s, d in zip(seps, nop)) + seps[-1]
    assert parse_nop(text) == nop


@given(st.text(max_size=30))
def test_parse_result_is_always_18_ascii_digits(text):
    try:
        nop = parse_nop(text)
    except FormatError:
        return
    assert len(nop) == 18 and all(c in "0123456789" for c in nop)


# --- display and parts ---------------------------------------------------------------------------


def test_display_example():
    assert display_nop(NOP) == DISPLAY


def test_parts():
    assert nop_parts(NOP) == {
        "province": "32",
        "regency": "75",
        "district": "010",
        "village": "001",
        "block": "001",
        "serial": "0001",
        "object_type": "0",
    }


@given(nops)
def test_parts_concatenate_back_with_their_widths(nop):
    parts = nop_parts(nop)
    assert list(parts) == ["province", "regency", "district", "village", "block", "serial", "object_type"]
    assert [len(v) for v in parts.values()] == [2, 2, 3, 3, 3, 4, 1]
    assert "".join(parts.values()) == nop


@pytest.mark.parametrize("bad", [DISPLAY, "3275", "32750100010010001X", None])
def test_display_and_parts_need_plain_nop(bad):
    with pytest.raises(FormatError):
        display_nop(bad)
    with pytest.raises(FormatError):
        nop_parts(bad)


# --- region --------------------------------------------------------------------------------------


def test_in_region():
    assert in_region(NOP, "3275")
    assert not in_region("327601000100100010", "3275")
    assert not in_region("337501000100100010", "3275")


def test_in_region_refuses_bad_region_code():
    for code in ["327", "32755", "32a5", ""]:
        with pytest.raises(ValueError):
            in_region(NOP, code)


# --- tax year ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "year"),
    [("2026", 2026), (2026, 2026), ("1000", 1000), ("9999", 9999), (1000, 1000), (9999, 9999)],
)
def test_tax_year_accepts(value, year):
    assert parse_tax_year(value) == year


@pytest.mark.parametrize(
    "value",
    ["", "26", "202", "20266", " 2026", "2026 ", "+026", "-202", "20.6", "２０２６", "٢٠٢٦", "abcd", "0999", "0000",
     999, 10000, 0, -2026, True, False, 2026.0, None, b"2026"],
)
def test_tax_year_refuses(value):
    with pytest.raises(FormatError) as e:
        parse_tax_year(value)
    assert e.value.field == "tax_year"


@given(st.integers(1000, 9999))
def test_tax_year_str_and_int_agree(year):
    assert parse_tax_year(str(year)) == parse_tax_year(year) == year
