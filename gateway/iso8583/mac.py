"""Message authentication codes (spec/iso8583.md "MAC").

HMAC-SHA256 with the bank's key over the message bytes from the MTI up to, not including, the MAC
field's 16 characters, truncated to 8 bytes and written as 16 upper-case hex characters. The MAC is
field 64 when the message has no secondary bitmap, field 128 when it has one; either way it is the
message's last field, so the MAC input is simply every byte but the last 16, and the bitmap it covers
already has the MAC's bit set.

Which field: "128" when any field 65-127 is present, else "64". The MAC fields themselves do not
count, so the rule gives the same answer before signing (no MAC yet) and after (MAC present).
"""
from __future__ import annotations

import hashlib
import hmac

from gateway.iso8583.spec import IsoFormatError, decode, encode

__all__ = ["compute_mac", "sign", "verify", "mac_field"]

_MAC_CHARS = 16
_MAC_FIELDS = ("64", "128")
_SECONDARY_FIELDS = frozenset(str(n) for n in range(65, 128))


def compute_mac(key: bytes, data: bytes) -> str:
    """16 upper-case hex characters: HMAC-SHA256(key, data) truncated to 8 bytes."""
    if not key:
        # An empty key would "authenticate" anything anyone can compute: a configuration mistake.
        raise ValueError("MAC key must not be empty")
    return hmac.new(key, data, hashlib.sha256).digest()[: _MAC_CHARS // 2].hex().upper()


def mac_field(fields: dict[str, str]) -> str:
    """"128" when the message has a field 65-127 (so a secondary bitmap), else "64"."""
    return "128" if _SECONDARY_FIELDS.intersection(fields) else "64"


def sign(fields: dict[str, str], key: bytes) -> bytes:
    """The encoded message (no length header) carrying its MAC; any MAC already in `fields` is replaced."""
    unsigned = {k: v for k, v in fields.items() if k not in _MAC_FIELDS}
    where = mac_field(unsigned)
    # A placeholder of the right length sets the MAC's bitmap bit and reserves its 16 bytes at the
    # end; pyiso8583 then computes the bitmap exactly as it will be sent.
    unsigned[where] = "0" * _MAC_CHARS
    raw = encode(unsigned)
    body = raw[:-_MAC_CHARS]
    return body + compute_mac(key, body).encode("ascii")


def verify(raw: bytes, key: bytes) -> bool:
    """Whether a received message (bytes as received, no length header) carries the right MAC.

    False when it cannot be decoded, when its MAC is missing or in the wrong field for its bitmap,
    when it carries both 64 and 128, or when the MAC does not match (upper-case hex, as the spec
    writes it). Compared in constant time.
    """
    try:
        fields = decode(raw)
    except IsoFormatError:
        return False
    where = mac_field(fields)
    other = "64" if where == "128" else "128"
    if where not in fields or other in fields:
        return False
    # `where` is the highest field present, so its value is the message's last 16 bytes.
    expected = compute_mac(key, bytes(raw[:-_MAC_CHARS])).encode("ascii")
    return hmac.compare_digest(expected, bytes(raw[-_MAC_CHARS:]))
