"""Length-header framing of ISO 8583 messages on a TCP stream (spec/iso8583.md "Transport and framing").

Each message is preceded by a header giving the byte length of the message that follows (header
excluded), per bank:
- "ascii4": 4 ASCII decimal digits, e.g. b"0187";
- "binary2": 2 bytes, unsigned big-endian.
A zero length is a keep-alive and is skipped. A header that is not 4 digits (ascii4) or announces more
than `max_len` bytes means the stream is out of step or hostile: `FramingError`, and the caller closes
the connection, because no later byte can be trusted to start a frame.

`read_frame` is for asyncio streams (the server); `FrameDecoder` is the same logic without I/O, for
clients and tests that receive bytes in arbitrary chunks.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["FramingError", "MAX_MESSAGE_BYTES", "frame", "header_length", "parse_header", "read_frame",
           "FrameDecoder"]

# Above this a length header is treated as garbage rather than a message (spec: "above 8192").
MAX_MESSAGE_BYTES = 8192

_HEADER_LENGTHS = {"ascii4": 4, "binary2": 2}


class FramingError(Exception):
    """The stream can no longer be trusted (bad or oversized length header): close the connection."""


def header_length(framing: str) -> int:
    """Bytes in the length header of `framing`; ValueError for an unknown framing (a config bug)."""
    try:
        return _HEADER_LENGTHS[framing]
    except KeyError:
        raise ValueError(f"unknown framing {framing!r}: expected ascii4 or binary2") from None


def frame(payload: bytes, framing: str) -> bytes:
    """`payload` preceded by its length header. An empty payload is a keep-alive.

    A payload longer than MAX_MESSAGE_BYTES is refused (ValueError): the peer would drop the
    connection on it, so sending it can only hurt.
    """
    size = len(payload)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}")
    if header_length(framing) == 4:
        header = b"%04d" % size
    else:
        header = size.to_bytes(2, "big")
    return header + bytes(payload)


def parse_header(header: bytes, framing: str, max_len: int = MAX_MESSAGE_BYTES) -> int:
    """The message length a header announces (0 = keep-alive); FramingError if it is not acceptable."""
    width = header_length(framing)
    if len(header) != width:
        # The caller reads exactly header_length() bytes; anything else is a bug, not bad input.
        raise ValueError(f"{framing} header must be {width} bytes, got {len(header)}")
    if framing == "ascii4":
        # Checked byte by byte: int() would also accept b" 187", b"+187" or b"0_87".
        if not all(0x30 <= b <= 0x39 for b in header):
            raise FramingError(f"ascii4 length header is not 4 digits: {bytes(header)!r}")
        size = int(header)
    else:
        size = int.from_bytes(header, "big", signed=False)
    if size > max_len:
        raise FramingError(f"length header announces {size} bytes, above the limit of {max_len}")
    return size


async def read_frame(reader: asyncio.StreamReader, framing: str, max_len: int = MAX_MESSAGE_BYTES,
                     on_keep_alive: Callable[[], None] | None = None) -> bytes | None:
    """The next message from `reader`, keep-alives skipped (`on_keep_alive` is called for each one, so
    that the caller can count it as traffic: spec "zero-length keep-alives count as traffic").

    Returns None on a clean EOF (the peer closed between frames). Raises FramingError for a bad
    header, and lets asyncio.IncompleteReadError through for EOF inside a header or a message: the
    peer died mid-frame, which the caller logs differently from a normal close. The wait for bytes
    is unbounded here; idle and first-frame timeouts are the caller's (the server's watchdog closes the
    transport rather than cancelling this call mid-frame).
    """
    width = header_length(framing)
    while True:
        try:
            header = await reader.readexactly(width)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise
        size = parse_header(header, framing, max_len)
        if size == 0:
            if on_keep_alive is not None:
                on_keep_alive()
            continue
        return await reader.readexactly(size)


class FrameDecoder:
    """Splits a byte stream, fed in any chunks, into messages (sans-I/O twin of `read_frame`).

    After a FramingError the decoder stays failed: every later `feed` raises again, because the
    stream position of the next header is unknown.
    """

    def __init__(self, framing: str, max_len: int = MAX_MESSAGE_BYTES) -> None:
        self._framing = framing
        self._width = header_length(framing)
        self._max_len = max_len
        self._buffer = bytearray()
        self._error: FramingError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; returns the messages completed by them (keep-alives dropped)."""
        if self._error is not None:
            raise FramingError(f"stream already failed: {self._error}")
        self._buffer += data
        messages: list[bytes] = []
        while len(self._buffer) >= self._width:
            try:
                size = parse_header(bytes(self._buffer[: self._width]), self._framing, self._max_len)
            except FramingError as exc:
                self._error = exc
                raise
            end = self._width + size
            if len(self._buffer) < end:
                break
            if size:
                messages.append(bytes(self._buffer[self._width : end]))
            del self._buffer[:end]
        return messages
