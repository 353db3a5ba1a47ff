import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import BillStatus, Channel, FormatError, Tax, other_unpaid_years, pbb_bill_key

# --- Tax ---------------------------------------------------------------------------------------


def test_tax_values_and_digits():
    assert Tax.PBB == "PBB" and Tax.BPHTB == "BPHTB"
    assert Tax.PBB.digit == "1"
    assert Tax.BPHTB.digit == "2"
    assert Tax.from_digit("1") is Tax.PBB
    assert Tax.from_digit("2") is Tax.BPHTB


@pytest.mark.parametrize("d", ["0", "3", "9", "", "12", "a", "١"])
def test_tax_from_unknown_digit(d):
    with pytest.raises(FormatError) as e:
        Tax.from_digit(d)
    assert e.value.field == "tax"


def test_bill_status_values():
    assert [s.value for s in BillStatus] == ["unpaid", "paid", "cancelled"]


# --- Channel -----------------------------------------------------------------------------------

CHANNELS = [
    ("6010", "teller"),
    ("6011", "atm"),
    ("6012", "edc"),
    ("6013", "phone"),
    ("6014", "internet"),
    ("6015", "kiosk"),
    ("6016", "autodebit"),
    ("6017", "mobile"),
]


@pytest.mark.parametrize(("code", "name"), CHANNELS)
def test_channel_iso_codes(code, name):
    ch = Channel(name)
    assert ch.iso_code == code
    assert Channel.from_iso(code) is ch
    assert Channel.parse(name) is ch


def test_channel_list_is_complete():
    assert [(c.iso_code, c.value) for c in Channel] == CHANNELS


def test_channel_round_trip():
    for ch in Channel:
        assert Channel.from_iso(ch.iso_code) is ch
        assert Channel.parse(ch.value) is ch


@pytest.mark.parametrize("code", ["6018", "6009", "0000", "601", "60100", " 6010", "6010 ", "", "٦٠١٠", 6010, None])
def test_channel_other_iso_values_refused(code):
    with pytest.raises(FormatError) as e:
        Channel.from_iso(code)
    assert e.value.field == "channel"


@pytest.mark.parametrize("name", ["ATM", "Teller", "pos", "", " atm", "6011", "mobile banking", None])
def test_channel_unknown_names_refused(name):
    with pytest.raises(FormatError) as e:
        Channel.parse(name)
    assert e.value.field == "channel"


# --- other unpaid years ------------------------------------------------------------------------


def test_other_unpaid_years_window_is_six_years():
    # business year 2026: the window is 2021..2026
    assert other_unpaid_years(2026, 2026, [2019, 2020, 2021, 2022, 2027]) == (2022, 2021)


def test_other_unpaid_years_excludes_the_bills_own_year():
    assert other_unpaid_years(2026, 2024, [2026, 2025, 2024, 2023]) == (2026, 2025, 2023)


def test_other_unpaid_years_newest_first_and_deduplicated():
    assert other_unpaid_years(2026, 2026, [2021, 2023, 2022, 2023]) == (2023, 2022, 2021)


def test_other_unpaid_years_at_most_five():
    # paying an old bill (2019) while all six window years are unpaid: the newest five
    assert other_unpaid_years(2026, 2019, range(2015, 2027)) == (2026, 2025, 2024, 2023, 2022)


def test_other_unpaid_years_all_window_but_own():
    assert other_unpaid_years(2026, 2026, range(2000, 2030)) == (2025, 2024, 2023, 2022, 2021)


def test_other_unpaid_years_none():
    assert other_unpaid_years(2026, 2026, []) == ()
    assert other_unpaid_years(2026, 2026, [2026]) == ()


@given(
    business_year=st.integers(1900, 2100),
    tax_year=st.integers(1890, 2110),
    unpaid=st.lists(st.integers(1880, 2120), max_size=20),
)
def test_other_unpaid_years_properties(business_year, tax_year, unpaid):
    got = other_unpaid_years(business_year, tax_year, unpaid)
    assert len(got) <= 5
    assert list(got) == sorted(set(got), reverse=True)
    assert tax_year not in got
    assert all(business_year - 5 <= y <= business_year and y in unpaid for y in got)
    # nothing newer than the oldest returned one was dropped
    candidates = sorted({y for y in unpaid if business_year - 5 <= y <= business_year and y != tax_year}, reverse=True)
    assert list(got) == candidates[:5]


# --- bill key ----------------------------------------------------------------------------------


def test_pbb_bill_key():
    key = pbb_bill_key("327501000100100010", 2026)
    assert key == "3275010001001000102026"
    assert len(key) == 22


def test_pbb_bill_key_refuses_bad_parts():
    with pytest.raises(FormatError):
        pbb_bill_key("32750100010010001", 2026)
    with pytest.raises(FormatError):
        pbb_bill_key("327501000100100010", 999)
