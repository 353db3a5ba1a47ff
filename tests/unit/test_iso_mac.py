"""gateway.iso8583.mac: HMAC-SHA256 MACs in field 64 / 128 (spec/iso8583.md "MAC")."""
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.iso8583.mac import compute_mac, mac_field, sign, verify
from gateway.iso8583.spec import decode, encode

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

ANSWER = {
    "t": "0210", "3": "341019", "4": "000000125000", "7": "0415103000", "11": "000123",
    "32": "110", "39": "00",
}  # fmt: skip
REVERSAL = {
    "t": "0400", "3": "541019", "4": "000000125000", "7": "0415103500", "11": "000124", "32": "110",
    "90": "0200" + "000123" + "0415103000" + "00000000110" + "00000000000",
}  # fmt: skip


def _independent_mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:16].upper().encode()


def test_compute_mac_rfc4231_vector():
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") = 5bdcc146bf60754e...
    assert compute_mac(b"Jefe", b"what do ya want for nothing?") == "5BDCC146BF60754E"


def test_compute_mac_refuses_an_empty_key():
    with pytest.raises(ValueError):
        compute_mac(b"", b"data")


def test_sign_known_vector_field_64():
    # Bitmap 3220000102000001: fields 3, 4, 7, 11, 32, 39 and the MAC's bit 64 already set.
    body = (
        b"0210" + b"3220000102000001" + b"341019" + b"000000125000" + b"0415103000" + b"000123"
        + b"03110" + b"00"
    )
    signed = sign(ANSWER, KEY)
    assert signed == body + _independent_mac(KEY, body)
    assert verify(signed, KEY)


def test_field_128_used_when_field_90_is_present():
    signed = sign(REVERSAL, KEY)
    fields = decode(signed)
    assert "128" in fields and "64" not in fields
    assert signed[4:20] == b"B220000100000000"  # secondary bitmap, 3, 4, 7, 11, 32
    assert signed[20:36] == b"0000004000000001"  # 90 and 128
    assert signed[-16:] == _independent_mac(KEY, signed[:-16])
    assert verify(signed, KEY)


def test_field_128_used_for_network_management():
    signed = sign({"t": "0800", "7": "0415103000", "11": "000001", "32": "110", "70": "301"}, KEY)
    assert "128" in decode(signed)
    assert verify(signed, KEY)


def test_mac_field():
    assert mac_field(ANSWER) == "64"
    assert mac_field(REVERSAL) == "128"
    assert mac_field(dict(ANSWER, **{"64": "x"})) == "64"
    assert mac_field(dict(ANSWER, **{"128": "x"})) == "64"  # the MAC itself does not count


def test_sign_does_not_modify_its_argument_and_replaces_an_old_mac():
    fields = dict(ANSWER, **{"64": "F" * 16})
    before = dict(fields)
    assert sign(fields, KEY) == sign(ANSWER, KEY)
    assert fields == before


def test_sign_on_the_fields_of_a_signed_message_gives_the_same_bytes():
    signed = sign(REVERSAL, KEY)
    assert sign(decode(signed), KEY) == signed


def test_verify_wrong_key():
    assert not verify(sign(ANSWER, KEY), b"another key")


def test_verify_message_without_mac():
    assert not verify(encode(ANSWER), KEY)
    assert not verify(encode(REVERSAL), KEY)


def test_verify_undecodable_message():
    assert not verify(sign(ANSWER, KEY)[:-1], KEY)
    assert not verify(b"", KEY)


def test_verify_mac_in_the_wrong_field():
    # Field 64 in a message with a secondary bitmap: the MAC must be 128 there.
    body = encode(dict(REVERSAL, **{"64": "0" * 16}))
    assert not verify(body[:-16] + _independent_mac(KEY, body[:-16]), KEY)
    # Field 128 in a message that would have no secondary bitmap without it.
    body = encode(dict(ANSWER, **{"128": "0" * 16}))
    assert not verify(body[:-16] + _independent_mac(KEY, body[:-16]), KEY)


def test_verify_refuses_two_macs():
    body = encode(dict(REVERSAL, **{"64": "0" * 16, "128": "0" * 16}))
    assert not verify(body[:-16] + _independent_mac(KEY, body[:-16]), KEY)


def test_verify_lower_case_mac():
    # The spec writes the MAC in upper-case hex; this vector's MAC has letters in it.
    signed = sign(ANSWER, KEY)
    assert signed[-16:] != signed[-16:].lower()
    assert not verify(signed[:-16] + signed[-16:].lower(), KEY)


@pytest.mark.parametrize("fields", [ANSWER, REVERSAL])
def test_tampering_any_byte_fails(fields):
    signed = sign(fields, KEY)
    for pos in range(len(signed)):
        for replacement in {signed[pos] ^ 0x01, ord("0") if signed[pos] != ord("0") else ord("1")}:
            tampered = signed[:pos] + bytes([replacement]) + signed[pos + 1 :]
            assert not verify(tampered, KEY), pos


@given(st.binary(min_size=1, max_size=64), st.text("0123456789", min_size=6, max_size=6),
       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=50))
def test_signed_messages_verify(key, stan, ntb):
    for fields in (ANSWER, REVERSAL):
        signed = sign(dict(fields, **{"11": stan, "48": ntb}), key)
        assert verify(signed, key)
        assert signed[-16:] == _independent_mac(key, signed[:-16])
