"""gateway.iso8583.spec: the dialect's codec (spec/iso8583.md "Message body", "Fields")."""
import iso8583.specs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.iso8583.spec import SPEC, IsoFormatError, decode, encode, is_request, response_mti

# The field table of spec/iso8583.md, copied here by hand (not from the implementation), as
# field -> (kind, length digits (0 = fixed), max length).
TABLE = {
    "2": ("n", 2, 19), "3": ("n", 0, 6), "4": ("n", 0, 12), "7": ("n", 0, 10), "11": ("n", 0, 6),
    "12": ("n", 0, 6), "13": ("n", 0, 4), "15": ("n", 0, 4), "18": ("n", 0, 4), "32": ("n", 2, 11),
    "33": ("n", 2, 11), "37": ("an", 0, 12), "39": ("an", 0, 2), "41": ("ans", 0, 8),
    "42": ("ans", 0, 15), "43": ("ans", 0, 40), "47": ("ans", 3, 999), "48": ("ans", 3, 32),
    "49": ("n", 0, 3), "61": ("ans", 3, 999), "62": ("ans", 3, 999), "63": ("ans", 3, 999),
    "64": ("an", 0, 16), "70": ("n", 0, 3), "90": ("n", 0, 42), "128": ("an", 0, 16),
}  # fmt: skip

# A PBB-P2 inquiry, written out byte by byte. Bitmap 7238400108808008 by hand:
#   72 = fields 2,3,4,7 | 38 = 11,12,13 | 40 = 18 | 01 = 32 | 08 = 37 | 80 = 41 | 80 = 49 | 08 = 61
INQUIRY_BYTES = (
    b"0200"
    + b"7238400108808008"
    + b"16" + b"4111111111111111"  # 2 PAN, LLVAR
    + b"341019"  # 3 processing code: PBB inquiry
    + b"000000000000"  # 4 amount: zeros in an inquiry
    + b"0415103000"  # 7 transmission date/time
    + b"000123"  # 11 STAN
    + b"173000"  # 12 local time
    + b"0415"  # 13 local date
    + b"6011"  # 18 channel: ATM
    + b"03" + b"110"  # 32 acquirer, LLVAR
    + b"000000000123"  # 37 RRN
    + b"ATM00001"  # 41 terminal
    + b"360"  # 49 currency
    + b"022" + b"3275010001001000102024"  # 61 NOP + year, LLLVAR
)
INQUIRY = {
    "t": "0200", "2": "4111111111111111", "3": "341019", "4": "000000000000", "7": "0415103000",
    "11": "000123", "12": "173000", "13": "0415", "18": "6011", "32": "110", "37": "000000000123",
    "41": "ATM00001", "49": "360", "61": "3275010001001000102024",
}  # fmt: skip


def _fails(data: bytes) -> IsoFormatError:
    with pytest.raises(IsoFormatError) as info:
        decode(data)
    return info.value


# --- SPEC ------------------------------------------------------------------------------------------


def test_spec_matches_the_field_table():
    for key, (_, len_type, max_len) in TABLE.items():
        assert (SPEC[key]["len_type"], SPEC[key]["max_len"]) == (len_type, max_len), key
        assert SPEC[key]["data_enc"] == SPEC[key]["len_enc"] == "ascii", key


def test_spec_changes_default_ascii_only_for_field_48_and_leaves_it_untouched():
    default = iso8583.specs.default_ascii
    changed = {k for k in default if default[k] != SPEC[k]}
    assert changed == {"48"}
    assert default["48"]["max_len"] == 999  # a deep copy: the library's own spec is unchanged
    assert set(SPEC) == set(default)


# --- exact bytes -----------------------------------------------------------------------------------


def test_known_inquiry_encodes_to_exact_bytes():
    assert encode(INQUIRY) == INQUIRY_BYTES


def test_known_inquiry_decodes_to_its_fields_without_bitmaps():
    assert decode(INQUIRY_BYTES) == INQUIRY


def test_encode_does_not_modify_its_argument():
    fields = dict(INQUIRY, p="0000000000000000")
    before = dict(fields)
    encode(fields)
    assert fields == before


def test_encode_ignores_given_bitmaps():
    assert encode(dict(INQUIRY, p="FFFFFFFFFFFFFFFF", **{"1": "FFFFFFFFFFFFFFFF"})) == INQUIRY_BYTES


def test_decode_accepts_bytearray():
    assert decode(bytearray(INQUIRY_BYTES)) == INQUIRY


# --- bitmaps ---------------------------------------------------------------------------------------


def test_no_secondary_bitmap_without_fields_65_to_128():
    raw = encode({"t": "0210", "3": "341019", "39": "00", "64": "0" * 16})
    assert raw[4:20] == b"2000000002000001"  # bit 1 clear
    assert raw[20:26] == b"341019"


def test_secondary_bitmap_with_a_field_above_64():
    raw = encode({"t": "0800", "7": "0415103000", "11": "000001", "32": "110", "70": "301"})
    assert raw[4:20] == b"8220000100000000"  # bit 1 set, fields 7, 11, 32
    assert raw[20:36] == b"0400000000000000"  # field 70
    assert raw[36:] == b"0415103000" + b"000001" + b"03110" + b"301"
    assert decode(raw) == {"t": "0800", "7": "0415103000", "11": "000001", "32": "110", "70": "301"}


def test_secondary_bitmap_with_field_128_only():
    raw = encode({"t": "0810", "128": "A" * 16})
    assert raw == b"0810" + b"8000000000000000" + b"0000000000000001" + b"A" * 16


# --- encode: what the gateway sends ----------------------------------------------------------------


def test_encode_text_becomes_ascii_and_fixed_text_is_space_filled():
    raw = encode({"t": "0210", "41": "Bäñk", "43": "Jalan Merdeka\t1"})
    fields = decode(raw)
    assert fields["41"] == "B??k    "
    assert fields["43"] == "Jalan Merdeka?1".ljust(40)


def test_encode_cuts_text_to_the_field_maximum():
    fields = decode(encode({"t": "0210", "43": "x" * 50, "48": "y" * 40, "62": "z" * 1200}))
    assert fields["43"] == "x" * 40
    assert fields["48"] == "y" * 32
    assert fields["62"] == "z" * 999


def test_encode_zero_fills_short_fixed_numbers():
    assert decode(encode({"t": "0210", "4": "125000", "11": "7"}))["4"] == "000000125000"


@pytest.mark.parametrize(
    "fields",
    [
        {"t": "0210", "4": "1" * 13},  # a number is never cut
        {"t": "0210", "4": "12a"},
        {"t": "0210", "4": ""},
        {"t": "0210", "4": "١٢٣"},  # non-ASCII digits
        {"t": "0210", "2": "1" * 20},
        {"t": "0210", "32": ""},
        {"t": "0210", "90": "1" * 43},
        {"t": "0210", "65": "0" * 16},  # the extended-bitmap indicator is not a field
        {"t": "0210", "129": "x"},
        {"t": "0210", "0": "x"},
        {"t": "0210", "x": "x"},
        {"t": "0210", "4": 125000},
        {"t": "210"},
        {"t": "02A0"},
        {"3": "341019"},
    ],
)
def test_encode_refuses_what_cannot_be_encoded(fields):
    with pytest.raises(ValueError):
        encode(fields)


# --- decode: format validation ---------------------------------------------------------------------


def test_non_digit_in_a_numeric_field_keeps_the_other_fields():
    bad = INQUIRY_BYTES.replace(b"000123", b"00012X", 1)
    err = _fails(bad)
    assert err.mti == "0200"
    assert "field 11" in err.reason
    assert err.fields == {k: v for k, v in INQUIRY.items() if k != "11"}


def test_error_fields_can_be_echoed():
    err = _fails(INQUIRY_BYTES.replace(b"000123", b"00012X", 1))
    encode(dict(err.fields, t="0210", **{"39": "30"}))


def test_truncated_message_reports_what_was_read():
    err = _fails(INQUIRY_BYTES[:-5])
    assert err.mti == "0200"
    assert "field 61" in err.reason
    assert err.fields == {k: v for k, v in INQUIRY.items() if k != "61"}


def test_extra_bytes_after_the_last_field():
    err = _fails(INQUIRY_BYTES + b"9")
    assert err.fields == INQUIRY


def test_lower_case_bitmap_is_refused():
    raw = encode({"t": "0800", "3": "341019", "70": "301"})
    assert raw[4:20] == b"A000000000000000"
    err = _fails(raw.replace(b"A", b"a", 1))
    assert err.mti == "0800"
    assert "bitmap" in err.reason


def test_bitmap_with_spaces_is_refused():
    # bytes.fromhex() skips spaces; the dialect's bitmaps are exactly 16 hex characters.
    with pytest.raises(IsoFormatError):
        decode(b"0200" + b"20 0000000000000 " + b"341019")


def test_length_prefix_must_be_digits():
    # int(" 3") == 3, so pyiso8583 alone would accept this field 32.
    err = _fails(INQUIRY_BYTES.replace(b"03110", b" 3110"))
    assert "field 32" in err.reason and "32" not in err.fields


def test_text_with_control_characters_is_refused():
    err = _fails(INQUIRY_BYTES.replace(b"ATM00001", b"ATM\x0000001"[:8]))
    assert "field 41" in err.reason


def test_non_ascii_bytes_are_refused():
    err = _fails(INQUIRY_BYTES.replace(b"ATM00001", b"ATM\xc3\xa90001"[:8]))
    assert err.mti == "0200" and "41" not in err.fields


def test_field_48_longer_than_32_is_refused():
    raw = encode({"t": "0200", "3": "541019"})
    raw = raw[:4] + b"2000000000010000" + raw[20:] + b"033" + b"N" * 33
    assert "field 48" in _fails(raw).reason


def test_unreadable_mti():
    err = _fails(b"02X0" + INQUIRY_BYTES[4:])
    assert err.mti is None
    assert "t" not in err.fields


@pytest.mark.parametrize("data", [b"", b"02", b"0200", b"0200723840"])
def test_short_messages(data):
    err = _fails(data)
    assert err.mti == ("0200" if len(data) >= 4 else None)


def test_answer_mti_is_still_reported():
    # Whether to answer is the server's decision (is_request); the codec only reports the MTI.
    assert _fails(INQUIRY_BYTES.replace(b"0200", b"0210", 1)[:-1]).mti == "0210"


def test_empty_secondary_bitmap_is_refused():
    raw = b"0210" + b"A000000000000000" + b"0000000000000000" + b"341019"
    assert "secondary bitmap" in _fails(raw).reason


def test_tertiary_bitmap_is_refused():
    raw = b"0800" + b"8000000000000000" + b"C000000000000000" + b"8000000000000000" + b"x"
    err = _fails(raw)
    assert err.mti == "0800"
    assert err.fields == {"t": "0800"}


def test_decode_refuses_non_bytes():
    with pytest.raises(TypeError):
        decode("0200")  # type: ignore[arg-type]


# --- MTIs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mti", "answer"),
    [
        ("0200", "0210"), ("0400", "0410"), ("0401", "0411"), ("0800", "0810"), ("0100", "0110"),
        ("0220", "0230"), ("1200", "1210"), ("0280", "0290"),
        ("0210", None), ("0410", None), ("0411", None), ("0810", None), ("0230", None),
        ("020", None), ("02000", None), ("02A0", None), ("", None), ("०२००", None),
    ],
)  # fmt: skip
def test_response_mti(mti, answer):
    assert response_mti(mti) == answer
    assert is_request(mti) is (answer is not None)


# --- properties ------------------------------------------------------------------------------------

_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _value(key: str) -> st.SearchStrategy[str]:
    kind, len_type, max_len = TABLE[key]
    if kind == "n":
        return st.text("0123456789", min_size=1 if len_type else max_len, max_size=max_len)
    if len_type:
        return st.text(_PRINTABLE, max_size=min(max_len, 60))
    return st.text(_PRINTABLE, min_size=max_len, max_size=max_len)


@st.composite
def valid_messages(draw) -> dict[str, str]:
    keys = draw(st.sets(st.sampled_from(sorted(TABLE))))
    fields = {"t": draw(st.text("0123456789", min_size=4, max_size=4))}
    fields.update({key: draw(_value(key)) for key in keys})
    return fields


@given(valid_messages())
def test_any_valid_message_round_trips(fields):
    raw = encode(fields)
    assert decode(raw) == fields
    assert encode(decode(raw)) == raw


@given(st.binary(max_size=300))
@example(b"0200" + b"F" * 16)
@example(b"0200" + b"8" + b"0" * 15 + b"8" + b"0" * 15 + b"F" * 16)
@example(b"0200" + b"2000000000000000" + b"+00001")
def test_any_bytes_decode_or_raise_iso_format_error(data):
    try:
        fields = decode(data)
    except IsoFormatError as err:
        assert err.mti is None or err.mti == data[:4].decode()
        encode(dict(err.fields, t="0210"))  # whatever was read can be echoed
    else:
        # Anything accepted is canonical: encoding it again gives the same bytes.
        assert encode(fields) == data


@st.composite
def mutated_messages(draw) -> bytes:
    raw = bytearray(encode(draw(valid_messages())))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.integers(0, 255) | st.sampled_from(b"0123456789ABCDEF "))
        if action == "insert":
            raw.insert(pos, byte)
        elif pos < len(raw):
            if action == "set":
                raw[pos] = byte
            else:
                del raw[pos]
    return bytes(raw)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated_messages())
def test_damaged_messages_decode_or_raise_iso_format_error(data):
    try:
        fields = decode(data)
    except IsoFormatError as err:
        encode(dict(err.fields, t="0210"))
    else:
        assert encode(fields) == data
