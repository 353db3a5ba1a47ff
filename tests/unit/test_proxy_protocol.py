"""PROXY protocol v2 headers (HAProxy's send-proxy-v2): the exact bytes of the specification's layout, every
malformed header refused with a reason, and no input that can make the parser fail otherwise."""
from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import proxy_protocol as pp

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def test_an_ipv4_header_has_the_layout_of_the_specification():
    header = pp.encode(("203.0.113.7", 50211), ("10.0.0.2", 8583))
    assert header == SIG + b"\x21\x11\x00\x0c" + bytes([203, 0, 113, 7, 10, 0, 0, 2]) + struct.pack("!HH", 50211, 8583)
    assert pp.parse(header[:16], header[16:]) == pp.ProxiedAddress(("203.0.113.7", 50211))


def test_ipv6_and_ipv4_mapped_sources():
    header = pp.encode(("2001:db8::7", 40000), ("2001:db8::1", 8583))
    assert header[13] == 0x21 and len(header) == 16 + 36
    assert pp.parse(header[:16], header[16:]).source == ("2001:db8::7", 40000)
    # A balancer listening on IPv6 names an IPv4 client as ::ffff:a.b.c.d: the allow lists see a.b.c.d.
    mapped = pp.encode(("198.51.100.9", 1234), ("2001:db8::1", 8583))
    assert pp.parse(mapped[:16], mapped[16:]).source == ("198.51.100.9", 1234)


def test_a_local_header_is_the_balancers_own_connection():
    header = pp.encode(None)
    assert header == SIG + b"\x20\x00\x00\x00"
    assert pp.parse(header[:16], header[16:]) == pp.ProxiedAddress(None)


def test_tlvs_after_the_addresses_are_ignored():
    header = pp.encode(("203.0.113.7", 50211), ("10.0.0.2", 8583))
    tlv = b"\x04\x00\x03abc"  # PP2_TYPE_NOOP with 3 bytes
    longer = header[:14] + struct.pack("!H", 12 + len(tlv)) + header[16:] + tlv
    assert pp.parse(longer[:16], longer[16:]).source == ("203.0.113.7", 50211)


@pytest.mark.parametrize("header, reason", [
    (b"PROXY TCP4 203.0.113.7 10.0.0.2 50211 8583\r\n"[:16], "signature"),  # version 1 (text)
    (SIG + b"\x11\x11\x00\x0c", "version 1"),
    (SIG + b"\x22\x11\x00\x0c", "command 2"),
    (SIG + b"\x21\x11\x10\x00", "longer than 512"),
])
def test_malformed_headers_are_refused_with_a_reason(header, reason):
    with pytest.raises(pp.ProxyHeaderError, match=reason):
        pp.body_length(header)


@pytest.mark.parametrize("family, body, reason", [
    (0x12, bytes(12), "only TCP"),       # UDP over IPv4
    (0x31, bytes(216), "only TCP"),      # a Unix socket
    (0x00, bytes(0), "only TCP"),        # UNSPEC with PROXY
    (0x11, bytes(8), "too short"),
])
def test_addresses_the_gateway_cannot_use_are_refused(family, body, reason):
    header = SIG + bytes([0x21, family]) + struct.pack("!H", len(body))
    with pytest.raises(pp.ProxyHeaderError, match=reason):
        pp.parse(header, body)


@given(st.binary(max_size=80))
def test_any_bytes_parse_or_are_refused(data):
    header, body = data[:16], data[16:]
    try:
        length = pp.body_length(header)
        pp.parse(header, body[:length] if len(body) >= length else body)
    except pp.ProxyHeaderError:
        pass


@given(st.binary(max_size=60))
def test_any_mutation_of_a_valid_header_parses_or_is_refused(noise):
    header = bytearray(pp.encode(("203.0.113.7", 50211), ("10.0.0.2", 8583)))
    for i, b in enumerate(noise):
        header[i % len(header)] ^= b
    try:
        length = pp.body_length(bytes(header[:16]))
        pp.parse(bytes(header[:16]), bytes(header[16:16 + length]))
    except pp.ProxyHeaderError:
        pass


async def test_read_takes_exactly_the_header_and_leaves_the_first_message():
    reader = asyncio.StreamReader()
    reader.feed_data(pp.encode(("203.0.113.7", 50211)) + b"0042ISO8583...")
    assert (await pp.read(reader, 1.0)).source == ("203.0.113.7", 50211)
    assert await reader.read(4) == b"0042"


async def test_read_gives_up_on_a_silent_or_short_stream():
    silent = asyncio.StreamReader()
    with pytest.raises(pp.ProxyHeaderError, match="within 0.05 s"):
        await pp.read(silent, 0.05)
    short = asyncio.StreamReader()
    short.feed_data(SIG + b"\x21\x11\x00\x0c" + b"\x01\x02")
    short.feed_eof()
    with pytest.raises(pp.ProxyHeaderError, match="closed before a complete"):
        await pp.read(short, 1.0)


async def test_a_connection_gone_without_a_byte_is_a_health_check():
    check = asyncio.StreamReader()
    check.feed_eof()
    assert await pp.read(check, 1.0) == pp.ProxiedAddress(None)


async def test_read_refuses_a_stream_that_is_no_header_without_waiting_for_more():
    client = asyncio.StreamReader()
    client.feed_data(b"0004ABCD")  # an ISO 8583 frame, then the client waits for its answer
    with pytest.raises(pp.ProxyHeaderError, match="signature"):
        await pp.read(client, 30.0)
