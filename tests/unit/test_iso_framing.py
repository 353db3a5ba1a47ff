"""gateway.iso8583.framing: length headers, keep-alives, bad streams (spec/iso8583.md "Transport")."""
import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.iso8583.framing import (
    MAX_MESSAGE_BYTES,
    FrameDecoder,
    FramingError,
    frame,
    header_length,
    parse_header,
    read_frame,
)

FRAMINGS = ["ascii4", "binary2"]


# --- frame / parse_header --------------------------------------------------------------------------


def test_frame_ascii4():
    assert frame(b"0800abc", "ascii4") == b"0007" + b"0800abc"
    assert frame(b"x" * 187, "ascii4")[:4] == b"0187"


def test_frame_binary2():
    assert frame(b"0800abc", "binary2") == b"\x00\x07" + b"0800abc"
    assert frame(b"x" * 300, "binary2")[:2] == b"\x01\x2c"


@pytest.mark.parametrize(("framing", "keep_alive"), [("ascii4", b"0000"), ("binary2", b"\x00\x00")])
def test_keep_alive_is_an_empty_frame(framing, keep_alive):
    assert frame(b"", framing) == keep_alive
    assert parse_header(keep_alive, framing) == 0


@pytest.mark.parametrize("framing", FRAMINGS)
def test_frame_refuses_a_message_above_the_limit(framing):
    assert len(frame(b"x" * MAX_MESSAGE_BYTES, framing)) == MAX_MESSAGE_BYTES + header_length(framing)
    with pytest.raises(ValueError):
        frame(b"x" * (MAX_MESSAGE_BYTES + 1), framing)


def test_header_lengths_and_unknown_framing():
    assert header_length("ascii4") == 4 and header_length("binary2") == 2
    with pytest.raises(ValueError):
        header_length("ascii2")
    with pytest.raises(ValueError):
        frame(b"x", "ascii2")


def test_parse_header():
    assert parse_header(b"0187", "ascii4") == 187
    assert parse_header(b"8192", "ascii4") == 8192
    assert parse_header(b"\x20\x00", "binary2") == 8192


@pytest.mark.parametrize("header", [b"01a7", b" 187", b"+187", b"0_87", b"\xff\xff\xff\xff", b"\x00\x00\x01\x00"])
def test_ascii4_header_of_non_digits_is_a_framing_error(header):
    with pytest.raises(FramingError):
        parse_header(header, "ascii4")


@pytest.mark.parametrize(("header", "framing"), [(b"8193", "ascii4"), (b"9999", "ascii4"), (b"\x20\x01", "binary2"),
                                                 (b"\xff\xff", "binary2")])
def test_length_above_the_limit_is_a_framing_error(header, framing):
    with pytest.raises(FramingError):
        parse_header(header, framing)


def test_limit_can_be_lowered():
    assert parse_header(b"0100", "ascii4", max_len=100) == 100
    with pytest.raises(FramingError):
        parse_header(b"0101", "ascii4", max_len=100)


def test_header_of_the_wrong_size_is_a_caller_bug():
    with pytest.raises(ValueError):
        parse_header(b"187", "ascii4")


# --- read_frame ------------------------------------------------------------------------------------


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_read_frame_returns_messages_and_skips_keep_alives(framing):
    stream = frame(b"", framing) + frame(b"first", framing) + frame(b"", framing) * 3 + frame(b"second", framing)
    reader = _reader(stream + frame(b"", framing))
    assert await read_frame(reader, framing) == b"first"
    assert await read_frame(reader, framing) == b"second"
    assert await read_frame(reader, framing) is None  # trailing keep-alive, then a clean EOF


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_read_frame_clean_eof(framing):
    assert await read_frame(_reader(b""), framing) is None


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_read_frame_eof_inside_the_header(framing):
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(_reader(frame(b"hello", framing)[:1]), framing)


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_read_frame_eof_inside_the_message(framing):
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(_reader(frame(b"hello", framing)[:-1]), framing)


async def test_read_frame_bad_header():
    with pytest.raises(FramingError):
        await read_frame(_reader(b"GET / HTTP/1.1\r\n"), "ascii4")


async def test_read_frame_oversized_length():
    with pytest.raises(FramingError):
        await read_frame(_reader(b"\xff\xff" + b"x" * 10), "binary2")


async def test_read_frame_waits_for_the_rest_of_a_frame():
    reader = _reader(b"0005he", eof=False)
    task = asyncio.ensure_future(read_frame(reader, "ascii4"))
    await asyncio.sleep(0)
    assert not task.done()
    reader.feed_data(b"llo")
    assert await task == b"hello"


# --- FrameDecoder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_decoder_byte_by_byte(framing):
    stream = frame(b"one", framing) + frame(b"", framing) + frame(b"two", framing)
    decoder = FrameDecoder(framing)
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [b"one", b"two"]


def test_decoder_bad_header_fails_for_good():
    decoder = FrameDecoder("ascii4")
    assert decoder.feed(b"0003abc") == [b"abc"]
    with pytest.raises(FramingError):
        decoder.feed(b"00x3abc")
    with pytest.raises(FramingError):
        decoder.feed(b"0003abc")


def test_decoder_oversized_length():
    with pytest.raises(FramingError):
        FrameDecoder("ascii4").feed(b"8193")
    with pytest.raises(FramingError):
        FrameDecoder("binary2", max_len=10).feed(b"\x00\x0b")


def test_decoder_unknown_framing():
    with pytest.raises(ValueError):
        FrameDecoder("ascii2")


@given(
    framing=st.sampled_from(FRAMINGS),
    payloads=st.lists(st.binary(max_size=40), max_size=8),
    cuts=st.lists(st.integers(0, 400), max_size=10),
)
def test_decoder_yields_the_same_messages_for_any_chunking(framing, payloads, cuts):
    stream = b"".join(frame(p, framing) for p in payloads)
    bounds = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    decoder = FrameDecoder(framing)
    out = []
    for start, end in zip(bounds, bounds[1:]):
        out += decoder.feed(stream[start:end])
    assert out == [p for p in payloads if p]
