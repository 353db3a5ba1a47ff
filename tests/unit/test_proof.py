"""The proof document, canonical bytes, validation codes and masks (domain.md "Payment proof")."""
import base64
import datetime
import hashlib
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.proof import (
    CHANNELS,
    b64url,
    b64url_decode,
    canonical_bytes,
    format_code,
    mask_bill_id,
    mask_name,
    normalize_code,
    proof_document,
    validation_code,
)

JAKARTA = ZoneInfo("Asia/Jakarta")

# The document of domain.md, as written there.
SPEC_EXAMPLE = {
    "v": 1, "ntpd": "261123100000001210", "tax": "PBB", "bill": "327501000100100010", "tax_year": 2026,
    "taxpayer": "SITI AMINAH", "principal": 150000, "penalty": 0, "total": 150000,
    "business_date": "2026-11-23", "paid_at": "2026-11-23T09:15:02+07:00",
    "bank": "110", "channel": "atm", "ntb": "ABC123", "region": "3275", "kid": "2026-1",
}
SPEC_EXAMPLE_BYTES = (
    b'{"bank":"110","bill":"327501000100100010","business_date":"2026-11-23","channel":"atm",'
    b'"kid":"2026-1","ntb":"ABC123","ntpd":"261123100000001210","paid_at":"2026-11-23T09:15:02+07:00",'
    b'"penalty":0,"principal":150000,"region":"3275","tax":"PBB","tax_year":2026,'
    b'"taxpayer":"SITI AMINAH","total":150000,"v":1}'
)

PBB_ARGS = dict(
    ntpd="261123100000001210", tax="PBB", bill="327501000100100010", tax_year=2026, taxpayer="SITI AMINAH",
    principal=150000, penalty=0, total=150000, business_date=datetime.date(2026, 11, 23),
    paid_at=datetime.datetime(2026, 11, 23, 9, 15, 2, tzinfo=JAKARTA), bank="110", channel="atm",
    ntb="ABC123", region="3275", kid="2026-1",
)
# NTPD with tax digit 2 (BPHTB): 261123 2 000000007 + check digits.
BPHTB_NTPD = "261123200000000720"


def bphtb_args(**over):
    args = dict(PBB_ARGS, ntpd=BPHTB_NTPD, tax="BPHTB", bill="20261100012356", nop="327501000100100010",
                principal=5_000_000, penalty=0, total=5_000_000)
    args.update(over)
    return args


# -- document and canonical bytes ------------------------------------------------------------------

def test_canonical_bytes_of_the_spec_example():
    assert canonical_bytes(SPEC_EXAMPLE) == SPEC_EXAMPLE_BYTES


def test_proof_document_is_the_spec_example():
    doc = proof_document(**PBB_ARGS)
    assert doc == SPEC_EXAMPLE
    assert list(doc) == list(SPEC_EXAMPLE)  # keys in the spec's order, for readers of the JSON
    assert canonical_bytes(doc) == SPEC_EXAMPLE_BYTES
    assert "nop" not in doc


def test_bphtb_document_adds_nop():
    doc = proof_document(**bphtb_args())
    assert doc["tax"] == "BPHTB"
    assert doc["bill"] == "20261100012356"
    assert doc["nop"] == "327501000100100010"
    assert b'"nop":"327501000100100010"' in canonical_bytes(doc)


def test_bphtb_needs_nop():
    with pytest.raises(ValueError, match="nop"):
        proof_document(**bphtb_args(nop=None))


def test_pbb_nop_equal_to_bill_is_tolerated_and_omitted():
    assert "nop" not in proof_document(**dict(PBB_ARGS, nop=PBB_ARGS["bill"]))
    with pytest.raises(ValueError):
        proof_document(**dict(PBB_ARGS, nop="327501000100100020"))


def test_non_ascii_taxpayer_is_raw_utf8():
    doc = proof_document(**dict(PBB_ARGS, taxpayer="NGUYỄN ÄNH ŞAHIN"))
    data = canonical_bytes(doc)
    assert '"taxpayer":"NGUYỄN ÄNH ŞAHIN"'.encode("utf-8") in data
    assert b"\\u" not in data
    assert json.loads(data) == doc


@pytest.mark.parametrize(
    ("paid_at", "text"),
    [
        (datetime.datetime(2026, 11, 23, 9, 15, 2, 999_999, tzinfo=JAKARTA), "2026-11-23T09:15:02+07:00"),
        (datetime.datetime(2026, 11, 23, 2, 15, 2, tzinfo=datetime.UTC), "2026-11-23T02:15:02+00:00"),
        (datetime.datetime(2026, 11, 23, 10, 15, 2, tzinfo=ZoneInfo("Asia/Makassar")), "2026-11-23T10:15:02+08:00"),
    ],
)
def test_paid_at_rfc3339_seconds_with_own_offset(paid_at, text):
    assert proof_document(**dict(PBB_ARGS, paid_at=paid_at))["paid_at"] == text


@pytest.mark.parametrize(
    "over",
    [
        {"paid_at": datetime.datetime(2026, 11, 23, 9, 15, 2)},  # naive
        {"business_date": datetime.datetime(2026, 11, 23, 9, 0, tzinfo=JAKARTA)},  # a datetime, not a date
        {"total": 150001},  # not principal + penalty
        {"principal": True, "total": 1},
        {"penalty": -1, "total": 149999},
        {"principal": 150000.0},
        {"channel": "ATM"},
        {"channel": "branch"},
        {"tax": "PBB-P2"},
        {"ntpd": BPHTB_NTPD},  # a BPHTB NTPD on a PBB proof
        {"ntpd": "261123100000001211"},  # wrong check digits
        {"bill": "32.75.010.001.001-0001.0"},  # display form is not the bill id
        {"tax_year": "2026"},
        {"region": "32750"},
        {"ntb": ""},
        {"ntb": "X" * 33},
        {"taxpayer": ""},
        {"kid": ""},
    ],
)
def test_bad_documents_are_refused(over):
    with pytest.raises(ValueError):
        proof_document(**dict(PBB_ARGS, **over))


def test_channels_in_spec_order():
    assert CHANNELS == ("teller", "atm", "edc", "phone", "internet", "kiosk", "autodebit", "mobile")


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_accepted(channel):
    assert proof_document(**dict(PBB_ARGS, channel=channel))["channel"] == channel


# -- base64url -------------------------------------------------------------------------------------

@given(st.binary(max_size=100))
def test_b64url_round_trip_without_padding(data):
    text = b64url(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data
    assert base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) == data


@pytest.mark.parametrize("text", ["AA==", "A", "AB+/", "AB C", "AB\n", "AB", "AAB"])
def test_b64url_decode_refuses_padding_other_alphabets_and_non_canonical(text):
    # "AB" and "AAB" carry non-zero trailing bits: the canonical spellings are "AA" and "AAA".
    with pytest.raises(ValueError):
        b64url_decode(text)


# -- validation code -------------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def crockford_code_by_hand(signature: bytes) -> str:
    """The spec's rule written independently: a bit accumulator over the digest, 5 bits at a time."""
    acc, nbits, out = 0, 0, []
    for byte in hashlib.sha256(signature).digest():
        acc = (acc << 8) | byte
        nbits += 8
        while nbits >= 5 and len(out) < 16:
            nbits -= 5
            out.append(ALPHABET[(acc >> nbits) & 0b11111])
            acc &= (1 << nbits) - 1
        if len(out) == 16:
            return "".join(out)
    raise AssertionError("unreachable")


def rfc4648_then_crockford(signature: bytes) -> str:
    """'as RFC 4648 base32 does with its own alphabet' (domain.md), with the alphabet swapped."""
    rfc = base64.b32encode(hashlib.sha256(signature).digest()).decode()[:16]
    return rfc.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET))


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (bytes(64), "YPJZTGPHD8G309WR"),
        (bytes(range(64)), "ZQNBKB7KE41P5F96"),
        (b"\xff" * 64, "GSKYE6199TF0VWEK"),
    ],
)
def test_validation_code_known_answers(signature, expected):
    assert crockford_code_by_hand(signature) == expected
    assert rfc4648_then_crockford(signature) == expected
    assert validation_code(signature) == expected


@given(st.binary(min_size=64, max_size=64))
def test_validation_code_matches_independent_implementation(signature):
    code = validation_code(signature)
    assert code == crockford_code_by_hand(signature)
    assert len(code) == 16 and set(code) <= set(ALPHABET)


# -- format / normalize ----------------------------------------------------------------------------

def test_format_code():
    assert format_code("7K2Q9MZD03XHPA4T") == "7K2Q-9MZD-03XH-PA4T"
    assert format_code("7k2q-9mzd-03xh-pa4t") == "7K2Q-9MZD-03XH-PA4T"


@pytest.mark.parametrize("bad", ["7K2Q9MZD03XHPA4", "7K2Q9MZD03XHPA4TT", "7K2Q9MZD03XHPA4U", ""])
def test_format_code_refuses_non_codes(bad):
    with pytest.raises(ValueError):
        format_code(bad)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("7K2Q-9MZD-03XH-PA4T", "7K2Q9MZD03XHPA4T"),
        ("7k2q-9mzd-03xh-pa4t", "7K2Q9MZD03XHPA4T"),
        (" 7K2Q 9MZD 03XH PA4T ", "7K2Q9MZD03XHPA4T"),
        ("7K2Q--9MZD03XHPA4T", "7K2Q9MZD03XHPA4T"),
        # Crockford's decoding aliases: O reads as 0, I and L as 1.
        ("7K2Q-9MZD-O3XH-PA4T", "7K2Q9MZD03XHPA4T"),
        ("IL00-0000-0000-0000", "1100000000000000"),
    ],
)
def test_normalize_code(text, code):
    assert normalize_code(text) == code


@pytest.mark.parametrize(
    "text",
    ["", "7K2Q-9MZD-03XH-PA4", "7K2Q-9MZD-03XH-PA4TX", "7K2Q-9MZD-03XH-PA4U", "7K2Q_9MZD_03XH_PA4T",
     "7K2Q-9MZD-03XH-PA4Ť", "Ⅶ" * 16, "-" * 100 + "7K2Q9MZD03XHPA4T", None, 1234],
)
def test_normalize_code_refuses(text):
    assert normalize_code(text) is None


# -- masks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("bill", "masked"),
    [
        ("327501000100100010", "327501000100******"),
        ("20261100012356", "20261100******"),
        ("1234567", "1******"),
        ("123456", "******"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_bill_id(bill, masked):
    assert mask_bill_id(bill) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("SITI AMINAH", "S*** A*****"),
        ("A", "A"),
        ("A B C", "A B C"),
        ("SITI  AMINAH", "S***  A*****"),
        (" SITI AMINAH ", " S*** A***** "),
        ("H. ABDUL MUIS", "H. A**** M***"),
        ("Siti Aminah", "S*** A*****"),
        ("ÉMILE", "É****"),
        ("E\u0301MILE", "E*****"),  # decomposed accent: the mark is masked too
        ("", ""),
    ],
)
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@given(st.text(max_size=40))
def test_mask_name_keeps_length_and_shows_one_letter_per_word(name):
    masked = mask_name(name)
    assert len(masked) == len(name)
    for word in masked.split():
        assert sum(ch.isalpha() for ch in word) <= 1
