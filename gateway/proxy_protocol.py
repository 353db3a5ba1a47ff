"""The PROXY protocol, version 2 (HAProxy's `send-proxy-v2`): the client's real address, sent by a balancer
in front of the gateway as the first bytes of each connection.

A bank's source address is its identity (allow lists, the ISO 8583 listener's address-to-bank map, limits per
address), so behind a balancer the gateway must learn it from the header, and must believe a header only from
the balancers it is told to trust (`proxy_protocol_from`): anybody else could name any address. The format
(https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt, section 2.2): a 12-byte signature, one byte of
version (2) and command (LOCAL 0, PROXY 1), one byte of family and transport, a 2-byte length, then the
addresses and optional TLVs (ignored here).
"""
from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
HEADER_BYTES = 16  # signature, version/command, family/transport, length
# The longest address block a sender may add TLVs to; a larger length is no header this gateway accepts.
MAX_BODY_BYTES = 512

_TCP4, _TCP6 = 0x11, 0x21
_ADDRESS_BYTES = {_TCP4: 12, _TCP6: 36}


class ProxyHeaderError(ValueError):
    """The bytes are not a PROXY protocol v2 header this gateway accepts; the connection is closed."""


@dataclass(frozen=True)
class ProxiedAddress:
    """Whom the balancer's connection is for: ``source`` (host, port) of the client, or None for a LOCAL
    connection (the balancer's own health check), which speaks for itself."""

    source: tuple[str, int] | None


def body_length(header: bytes) -> int:
    """From the first HEADER_BYTES: how many bytes of addresses and TLVs follow."""
    if len(header) != HEADER_BYTES or header[:12] != SIGNATURE:
        raise ProxyHeaderError("no PROXY protocol v2 signature")
    if header[12] >> 4 != 2:
        raise ProxyHeaderError(f"PROXY protocol version {header[12] >> 4}, only 2 is accepted")
    if header[12] & 0x0F not in (0, 1):
        raise ProxyHeaderError(f"unknown PROXY protocol command {header[12] & 0x0F}")
    (length,) = struct.unpack("!H", header[14:16])
    if length > MAX_BODY_BYTES:
        raise ProxyHeaderError(f"PROXY protocol header of {length} bytes is longer than {MAX_BODY_BYTES}")
    return length


def parse(header: bytes, body: bytes) -> ProxiedAddress:
    """The address a complete header (its first HEADER_BYTES and the ``body`` they announce) names."""
    length = body_length(header)
    if len(body) != length:
        raise ProxyHeaderError("PROXY protocol header cut short")
    if header[12] & 0x0F == 0:  # LOCAL: the balancer itself (a health check)
        return ProxiedAddress(None)
    family = header[13]
    need = _ADDRESS_BYTES.get(family)
    if need is None:
        raise ProxyHeaderError(f"PROXY protocol family/transport 0x{family:02x}: only TCP over IPv4 or IPv6")
    if length < need:
        raise ProxyHeaderError("PROXY protocol address block too short")
    if family == _TCP4:
        host = str(ipaddress.IPv4Address(body[0:4]))
        (port,) = struct.unpack("!H", body[8:10])
    else:
        address = ipaddress.IPv6Address(body[0:16])
        host = str(address.ipv4_mapped or address)
        (port,) = struct.unpack("!H", body[32:34])
    return ProxiedAddress((host, port))


def encode(source: tuple[str, int] | None, destination: tuple[str, int] = ("0.0.0.0", 0)) -> bytes:
    """A v2 header for ``source`` (None: LOCAL), as a balancer sends it (for tests and the bank simulator)."""
    if source is None:
        return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version == 4 and dst.version == 4:
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
        return SIGNATURE + bytes([0x21, _TCP4]) + struct.pack("!H", len(body)) + body
    src6 = src if src.version == 6 else ipaddress.IPv6Address(f"::ffff:{src}")
    dst6 = dst if dst.version == 6 else ipaddress.IPv6Address(f"::ffff:{dst}")
    body = src6.packed + dst6.packed + struct.pack("!HH", source[1], destination[1])
    return SIGNATURE + bytes([0x21, _TCP6]) + struct.pack("!H", len(body)) + body


def check_prefix(data: bytes) -> None:
    """Refuse at once the first bytes of a stream that cannot begin a header (a client that is no balancer
    waits for no timeout)."""
    if not SIGNATURE.startswith(data[:12]):
        raise ProxyHeaderError("no PROXY protocol v2 signature")


async def read(reader: asyncio.StreamReader, timeout_s: float) -> ProxiedAddress:
    """Read one header from the start of a stream, within ``timeout_s``; ProxyHeaderError otherwise."""
    header = b""
    try:
        async with asyncio.timeout(timeout_s):
            while len(header) < HEADER_BYTES:
                chunk = await reader.read(HEADER_BYTES - len(header))
                if not chunk and not header:
                    # Connected and gone without a byte: the balancer's TCP health check.
                    return ProxiedAddress(None)
                if not chunk:
                    raise ProxyHeaderError("connection closed before a complete PROXY protocol header")
                header += chunk
                check_prefix(header)
            body = await reader.readexactly(body_length(header))
    except asyncio.IncompleteReadError as exc:
        raise ProxyHeaderError("connection closed before a complete PROXY protocol header") from exc
    except TimeoutError as exc:
        raise ProxyHeaderError(f"no complete PROXY protocol header within {timeout_s} s") from exc
    return parse(header, body)
