"""The gateway's ISO 8583 dialect (spec/iso8583.md "Message body" and "Fields") on top of pyiso8583.

pyiso8583 does the byte work (MTI, bitmaps, length prefixes); this module adds what it leaves to the
caller: the field table's formats (n / an / ans) checked on every received message, ASCII-only text
on every sent one, and one exception type, `IsoFormatError`, for everything that makes a message
unreadable, so the server can answer RC 30 or drop it without catching library internals.

Decoded and encoded messages are plain dicts: "t" is the MTI, field numbers as strings ("2".."128")
are the fields. The bitmaps ("p", "1") are never part of them: `decode` drops them and `encode`
recomputes them from the fields present, so a bitmap can never disagree with the fields.
"""
from __future__ import annotations

import copy
from typing import Any

import iso8583
import iso8583.specs

__all__ = ["SPEC", "IsoFormatError", "decode", "encode", "response_mti", "is_request"]

# A deep copy, so that changing it can never alter pyiso8583's module-level default for other users.
# Typed as pyiso8583's encoder reads it: a field's settings are str, int or bool by name.
SPEC: dict[str, dict[str, Any]] = copy.deepcopy(iso8583.specs.default_ascii)

# The field table agrees with default_ascii everywhere (lengths, LLVAR/LLLVAR, ASCII encoding of data
# and length prefixes) except here:
# - field 48, the NTB (bank reference), is LLLVAR ans..32, not ..999: a longer bank reference is a
#   format error on receipt and cannot be stored as a message key component either.
SPEC["48"]["max_len"] = 32

# The table's format ("kind") of every field it lists. Lengths and LLVAR/LLLVAR come from SPEC so they
# are written down once. Fields the table does not list (a bank may send e.g. 35, 52 or 55) are
# decoded by default_ascii and treated as "ans": the gateway does not use them, and the log never
# stores 35/52/55 (the message log's job, not the codec's).
_KINDS = {
    "2": "n", "3": "n", "4": "n", "7": "n", "11": "n", "12": "n", "13": "n", "15": "n", "18": "n",
    "32": "n", "33": "n", "37": "an", "39": "an", "41": "ans", "42": "ans", "43": "ans",
    "47": "ans", "48": "ans", "49": "n", "61": "ans", "62": "ans", "63": "ans", "64": "an",
    "70": "n", "90": "n", "128": "an",
}  # fmt: skip

_HEX_UPPER = frozenset("0123456789ABCDEF")
# "an"/"ans" are checked as printable ASCII (space..tilde): strict ISO "an" (letters and digits only)
# would refuse e.g. an RRN with a space that banks do send, and nothing in the gateway depends on it.
_PRINTABLE = frozenset(chr(c) for c in range(0x20, 0x7F))
# Field 65 is pyiso8583's tertiary-bitmap indicator; fields 129-192 do not exist in this dialect.
_FIELD_NUMBERS = frozenset(str(n) for n in range(2, 129)) - {"65"}


class IsoFormatError(Exception):
    """A received message that cannot be decoded or breaks the field table's formats.

    `mti` is the MTI when the first 4 bytes are ASCII digits (so the server can tell whether it was a
    request and owes an RC 30 answer), `fields` whatever could be read and is itself well-formed (so
    it can be echoed through `encode` without failing again), `reason` says what was wrong.
    """

    def __init__(self, reason: str, mti: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.mti = mti
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return self.reason


def decode(data: bytes) -> dict[str, str]:
    """The fields of a received message (bytes after the length header), or IsoFormatError.

    Returns "t" and the fields present; the bitmaps are dropped (see the module docstring).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    mti = _readable_mti(data)
    try:
        doc_dec, doc_enc = iso8583.decode(data, SPEC)
    except iso8583.DecodeError as exc:
        # The field being decoded when it failed is in doc_dec half-done; everything before it was
        # read completely and is kept if it is well-formed.
        # (pyiso8583 also names the last, complete, field when bytes follow it.)
        complete = exc.msg.startswith("Extra data")
        read = {k: v for k, v in exc.doc_dec.items() if complete or k != exc.field}
        _, good = _validate(read, exc.doc_enc)
        raise IsoFormatError(f"field {exc.field}: {exc.msg}", mti, good) from None
    except KeyError as exc:
        # A secondary bitmap with bit 65 makes pyiso8583 read a tertiary bitmap and look up fields
        # 129-192, which this dialect (and default_ascii) does not define; nothing decoded survives
        # the exception, so only the MTI can be echoed.
        raise IsoFormatError(f"field {exc.args[0]}: not defined (tertiary bitmap)", mti,
                             {"t": mti} if mti else {}) from None
    errors, good = _validate(doc_dec, doc_enc)
    if errors:
        raise IsoFormatError("; ".join(errors), mti, good)
    return good


def encode(fields: dict[str, str]) -> bytes:
    """The bytes of a message to send (without length header); ValueError for a field that cannot be.

    Text fields (an/ans, and fields the table does not list) are made ASCII (any other character,
    control characters included, becomes "?"), cut to the field's maximum and, when fixed-length,
    space-filled. Numeric fields must be ASCII digits and are never cut: a fixed one that is short is
    zero-filled on the left (the spec's "right-justified, zero-filled"), a longer one is an error.
    Bitmaps are computed by pyiso8583 from the fields present (a secondary bitmap only when a field
    65-128 is present); "p" and "1" in `fields` are ignored. `fields` is not modified.
    """
    doc: dict[str, str] = {}
    for key, value in fields.items():
        if key in ("p", "1"):
            continue
        if not isinstance(value, str):
            raise ValueError(f"field {key}: value must be str, not {type(value).__name__}")
        if key == "t":
            if not _is_digits(value, 4, 4):
                raise ValueError(f"MTI must be 4 digits, got {value!r}")
            doc["t"] = value
        elif key in _FIELD_NUMBERS:
            doc[key] = _prepare(key, value)
        else:
            raise ValueError(f"field {key!r} does not exist in this dialect")
    if "t" not in doc:
        raise ValueError("MTI (field 't') is missing")
    try:
        # pyiso8583 writes the bitmaps into the dict it is given; `doc` is our own copy.
        raw, _ = iso8583.encode(doc, SPEC)
    except iso8583.EncodeError as exc:  # pragma: no cover - _prepare already enforces the spec
        raise ValueError(str(exc)) from None
    return bytes(raw)


def response_mti(mti: str) -> str | None:
    """The answer MTI of a request MTI (third digit + 1: 0200 -> 0210, 0401 -> 0411), else None.

    None for an MTI that is an answer already (odd third digit) or is not 4 ASCII digits.
    """
    if not _is_digits(mti, 4, 4):
        return None
    function = int(mti[2])
    if function % 2:
        return None
    return mti[:2] + str(function + 1) + mti[3]


def is_request(mti: str) -> bool:
    return response_mti(mti) is not None


# --- private ---------------------------------------------------------------------------------------


def _readable_mti(data: bytes) -> str | None:
    head = data[:4]
    if len(head) == 4 and all(0x30 <= b <= 0x39 for b in head):
        return head.decode("ascii")
    return None


def _is_digits(text: str, min_len: int, max_len: int) -> bool:
    # str.isdigit() would accept non-ASCII digits (see gateway.domain._digits).
    return isinstance(text, str) and min_len <= len(text) <= max_len and text.isascii() and text.isdigit()


def _kind(key: str) -> str:
    return _KINDS.get(key, "ans")


def _validate(doc_dec: dict, doc_enc: dict) -> tuple[list[str], dict[str, str]]:
    """(errors, the well-formed fields) of what pyiso8583 decoded."""
    errors: list[str] = []
    good: dict[str, str] = {}
    for key, value in doc_dec.items():
        problem = _field_problem(key, value, doc_enc.get(key, {}))
        if problem:
            errors.append(f"field {key}: {problem}")
        elif key not in ("p", "1"):
            good[key] = value
    if "1" in doc_dec and not any(k in _FIELD_NUMBERS and int(k) >= 65 for k in doc_dec):
        # Bitmaps are canonical: a secondary bitmap announcing no field is not one the gateway
        # would send, and it would make the MAC's field (64 or 128) ambiguous.
        errors.append("field 1: secondary bitmap without any field 65-128")
    return errors, good


def _field_problem(key: str, value: str, enc: dict) -> str | None:
    if key == "t":
        return None if _is_digits(value, 4, 4) else "MTI must be 4 digits"
    if key in ("p", "1"):
        ok = len(value) == 16 and _HEX_UPPER.issuperset(value)
        return None if ok else "bitmap must be 16 upper-case hex characters"
    numeric, low, max_len, prefix_len = _RULES[key]
    # pyiso8583 reads the prefix with int(), which also accepts " 5", "+5" or "0_5"; bytes.isdigit() is
    # ASCII digits only.
    if prefix_len and not (len(prefix := enc.get("len", b"")) == prefix_len and prefix.isdigit()):
        return "length prefix must be digits"
    if numeric:
        if not (low <= len(value) <= max_len and value.isascii() and value.isdigit()):
            return f"must be {'' if prefix_len else 'exactly '}{max_len} digits"
        return None
    if not (value.isascii() and value.isprintable()):
        return "must be printable ASCII"
    return None


def _prepare(key: str, value: str) -> str:
    numeric, _, max_len, prefix_len = _RULES[key]
    if numeric:
        if not (1 <= len(value) <= max_len and value.isascii() and value.isdigit()):
            raise ValueError(f"field {key}: must be 1..{max_len} ASCII digits, got {value!r}")
        return value if prefix_len else value.zfill(max_len)
    # str.isprintable() is, on ASCII text, the printable range 0x20-0x7E: the usual answer is checked in C.
    printable = value.isascii() and value.isprintable()
    text = (value if printable else "".join(c if c in _PRINTABLE else "?" for c in value))[:max_len]
    return text if prefix_len else text.ljust(max_len)


# Each field's rules as the checks above read them, worked out once from SPEC and _KINDS (they run for
# every field of every message): (numeric, the fewest digits a numeric field may have, max_len, the
# length prefix's width or 0 when fixed).
_RULES: dict[str, tuple[bool, int, int, int]] = {
    key: (_kind(key) == "n", 1 if spec["len_type"] else spec["max_len"], spec["max_len"], spec["len_type"])
    for key, spec in SPEC.items() if key not in ("t", "p", "1")
}
