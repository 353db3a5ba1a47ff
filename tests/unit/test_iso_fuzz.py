"""Fuzzing the ISO 8583 codec and everything the listener does with a message before any I/O: framing,
decoding, MAC verification, the RC 30 answer to an undecodable request and the message log's view of a
message. Any input must end in a value or in the project's own exception types, never in another
exception (that would be a connection task dying with a traceback in the server).

The dialect's own round-trip and damaged-message properties are in test_iso_spec.py; here the messages
use every field pyiso8583's default_ascii defines (a bank may send fields outside the table), and the
damage is the kind a broken or hostile peer produces: bit flips, truncation, edited length prefixes and
bitmaps, spliced messages.
"""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.iso8583 import framing, mac
from gateway.iso8583.connection import LOGGED_FIELDS, masked
from gateway.iso8583.messages import Router
from gateway.iso8583.spec import SPEC, IsoFormatError, decode, encode, is_request
from helpers.fuzz import ACTIONS, damage

FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
KEY = bytes(range(32))

# The field table's numeric fields (spec/iso8583.md "Fields"); any other field is text for the codec.
NUMERIC = {"2", "3", "4", "7", "11", "12", "13", "15", "18", "32", "33", "49", "70", "90"}
FIELDS = sorted((k for k in SPEC if k.isdigit() and 2 <= int(k) <= 128 and k != "65"), key=int)
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _value(key: str) -> st.SearchStrategy[str]:
    spec = SPEC[key]
    low = 1 if spec["len_type"] else spec["max_len"]
    high = min(spec["max_len"], 40) if spec["len_type"] else spec["max_len"]
    if key in NUMERIC:
        return st.text("0123456789", min_size=low, max_size=max(low, high))
    if key in ("64", "128"):
        return st.text("0123456789ABCDEF", min_size=16, max_size=16)
    return st.text(_PRINTABLE, min_size=0 if spec["len_type"] else low, max_size=max(low, high))


@st.composite
def messages(draw) -> dict[str, str]:
    """A well-formed message of any MTI with any fields of default_ascii (all of them ASCII)."""
    keys = draw(st.sets(st.sampled_from(FIELDS), max_size=12))
    fields = {"t": draw(st.sampled_from(["0200", "0210", "0400", "0401", "0800", "0810"])
                        | st.text("0123456789", min_size=4, max_size=4))}
    fields.update({key: draw(_value(key)) for key in keys})
    return fields


@st.composite
def damaged(draw) -> bytes:
    """A valid message's bytes after one to four kinds of damage."""
    raw = bytearray(encode(draw(messages())))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from([*ACTIONS, "bitmap", "splice"]))
        pos = draw(st.integers(0, max(0, len(raw) - 1)))
        if action in ACTIONS:
            damage(draw, raw, action, pos, 8)
        elif action == "bitmap" and len(raw) >= 20:
            # Any hex digit of the primary bitmap, upper or lower case.
            raw[draw(st.integers(4, 19))] = draw(st.sampled_from(b"0123456789ABCDEFabcdef"))
        elif action == "splice":
            other = encode(draw(messages()))
            raw[pos:] = other[draw(st.integers(0, len(other))):]
    return bytes(raw)


inputs = st.one_of(st.binary(max_size=400), damaged(),
                   st.builds(lambda mti, rest: mti + rest, st.sampled_from([b"0200", b"0800", b"0400"]),
                             st.binary(max_size=200)))


def _router() -> Router:
    # refuse() only needs the business date; nothing of the engine is used on this path.
    ctx = SimpleNamespace(business_date=lambda now: date(2026, 4, 15), clock=SimpleNamespace(now=lambda: None))
    return Router(SimpleNamespace(ctx=ctx))


ROUTER = _router()


def _encode_answer(fields: dict[str, str], key: bytes | None) -> bytes:
    """As the connection encodes an answer: everything, else the essentials (connection._encode)."""
    try:
        return mac.sign(fields, key) if key else encode(fields)
    except ValueError:
        minimal = {k: fields[k] for k in ("t", "7", "11", "15", "39") if k in fields}
        return mac.sign(minimal, key) if key else encode(minimal)


def _assert_logged_safely(fields: dict[str, str]) -> None:
    logged = masked(fields)
    for key, value in fields.items():
        if key in ("p", "1"):
            assert key not in logged
        elif key in LOGGED_FIELDS and key != "2":
            assert logged[key] == value
        elif key != "2":
            assert logged[key] == {"len": len(value)}


# --- properties -----------------------------------------------------------------------------------


@FUZZ
@given(messages())
def test_any_message_of_any_fields_round_trips(fields):
    raw = encode(fields)
    assert decode(raw) == fields
    assert encode(decode(raw)) == raw
    signed = mac.sign(fields, KEY)
    assert mac.verify(signed, KEY)
    assert decode(signed) == {**{k: v for k, v in fields.items() if k not in ("64", "128")},
                              mac.mac_field(fields): signed[-16:].decode()}


@FUZZ
@given(inputs)
@example(b"")
@example(b"0200")
@example(b"0200" + b"F" * 32)
@example(b"0200C" + b"0" * 31 + b"0" * 16)
@example(b"0800" + b"8220000000000000" + b"0400000000000000" + b"0101010101000001" + b"0" * 50)
def test_any_input_is_decoded_or_refused_with_iso_format_error(data):
    """The listener's whole path for a message body, minus the sockets."""
    try:
        fields = decode(data)
    except IsoFormatError as exc:
        # Logged, and answered RC 30 when the MTI is readable and a request.
        assert exc.mti is None or data[:4] == exc.mti.encode()
        _assert_logged_safely(exc.fields)
        if exc.mti and is_request(exc.mti):
            outcome = ROUTER.refuse(dict(exc.fields, t=exc.mti), "30", detail=exc.reason)
            for key in (None, KEY):
                answer = decode(_encode_answer(outcome.fields, key))
                assert answer["t"] == exc.mti[:2] + str(int(exc.mti[2]) + 1) + exc.mti[3]
                assert answer["39"] == "30"
        return
    assert encode(fields) == data  # anything accepted is canonical
    _assert_logged_safely(fields)
    assert isinstance(mac.verify(data, KEY), bool)


@FUZZ
@given(inputs)
def test_mac_verify_never_raises(data):
    assert mac.verify(data, KEY) in (True, False)


@FUZZ
@given(st.sampled_from(["ascii4", "binary2"]), st.lists(st.binary(max_size=64), max_size=6),
       st.lists(st.integers(1, 40), max_size=6))
def test_any_stream_is_split_or_refused_with_framing_error(name, chunks, cuts):
    decoder = framing.FrameDecoder(name)
    stream = b"".join(chunks)
    try:
        position = 0
        for cut in [*cuts, len(stream)]:
            for message in decoder.feed(stream[position:position + cut]):
                assert 0 < len(message) <= framing.MAX_MESSAGE_BYTES
            position += cut
        decoder.feed(stream[position:])
    except framing.FramingError:
        with pytest.raises(framing.FramingError):
            decoder.feed(b"0000")  # once failed, failed for good


@FUZZ
@given(damaged())
def test_damaged_signed_messages_never_verify_unless_unchanged(data):
    """A MAC-carrying message that was damaged does not verify (HMAC over every byte but the MAC)."""
    try:
        fields = decode(data)
    except IsoFormatError:
        assert not mac.verify(data, KEY)
        return
    signed = mac.sign(fields, KEY)
    assert mac.verify(signed, KEY)
    tampered = bytearray(signed)
    tampered[len(signed) // 2] ^= 0x01
    assert not mac.verify(bytes(tampered), KEY)


def test_masked_keeps_the_allow_list_and_measures_the_rest():
    fields = {"t": "0200", "p": "F" * 16, "1": "0" * 16, "2": "4111111111111111", "3": "341019",
              "34": "SECRETPAN", "35": "4111111111111111D2512", "45": "B4111^NAME/CARD^2512", "52": "1" * 16,
              "55": "9F26", "61": "3275010001001000102024", "100": "1234"}
    assert masked(fields) == {
        "t": "0200", "2": "411111******1111", "3": "341019", "61": "3275010001001000102024",
        "34": {"len": 9}, "35": {"len": 21}, "45": {"len": 20}, "52": {"len": 16}, "55": {"len": 4},
        "100": {"len": 4},
    }


def test_the_allow_list_is_the_spec_field_table():
    # spec/iso8583.md "Fields", copied by hand: a field added to the table must be added to the log too.
    table = {"2", "3", "4", "7", "11", "12", "13", "15", "18", "32", "33", "37", "39", "41", "42", "43", "47",
             "48", "49", "61", "62", "63", "64", "70", "90", "128"}
    assert LOGGED_FIELDS == table | {"t"}
