"""The text rules for everything the gateway accepts (spec/http-api.md "Staff routes", text rules).

Every text that enters the system — JSON string values, query parameters, header values the gateway reads,
ISO 8583 text fields — must be valid Unicode without NUL, lone surrogates or other control characters, and
within its length; TAB and line breaks only in free text (a reversal's reason, notes). A text that breaks
them is refused at the edge (HTTP 400 / RC 30) and never reaches PostgreSQL, which would refuse NUL and
lone surrogates with an error that the request would otherwise answer as 96.

``loggable`` is the other half: what the message log may store of a text it did not validate (a hostile
path, a claimed bank code): always writable, never longer than a bound.
"""
from __future__ import annotations

import re

from .errors import FormatError

# Lengths of the free texts (spec/http-api.md).
REASON_MAX = 255
TERMINAL_ID_MAX = 16
NOTE_MAX = 2000
NTB_MAX = 32
# Anything else a caller names (a query value, a header the gateway reads): generous, but bounded.
DEFAULT_MAX = 255

# C0 controls, DEL, C1 controls and lone surrogates; TAB/LF/CR are allowed in multi-line text only.
_FORBIDDEN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FORBIDDEN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(value: object, name: str, max_len: int = DEFAULT_MAX, *, multiline: bool = False,
               required: bool = True) -> str:
    """``value`` if it is acceptable text, else ``FormatError(name, reason)``."""
    if not isinstance(value, str):
        raise FormatError(name, "must be text")
    if required and not value.strip():
        raise FormatError(name, "must not be empty")
    if len(value) > max_len:
        raise FormatError(name, f"at most {max_len} characters")
    pattern = _FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_LINE
    if pattern.search(value):
        raise FormatError(name, "control characters, NUL or invalid Unicode are not allowed")
    return value


def is_clean(value: str, max_len: int = DEFAULT_MAX) -> bool:
    """Whether ``value`` passes ``check_text`` as a single-line text (may be empty)."""
    return len(value) <= max_len and not _FORBIDDEN_LINE.search(value)


def check_bytes(raw: bytes, name: str, max_len: int = DEFAULT_MAX) -> str:
    """A header or query value as bytes: it must be UTF-8 and clean single-line text."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(name, "not valid UTF-8") from None
    return check_text(value, name, max_len, required=False)


def loggable(value: str | None, max_len: int = 1000) -> str | None:
    """A text the log can always store: NUL, surrogates and other controls shown escaped, then cut.

    PostgreSQL refuses NUL in ``text`` and ``\\u0000`` in ``jsonb``, and asyncpg cannot encode a lone
    surrogate: one such value must never make a batch of log rows unwritable.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    # str.isprintable() is false for every character the pattern forbids (controls, surrogates) and for a
    # few it allows (TAB, LF, CR, format characters): the usual value is passed without the search.
    if not value.isprintable() and _FORBIDDEN_MULTILINE.search(value):
        value = _FORBIDDEN_MULTILINE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                         else f"\\u{ord(m.group()):04x}", value)
    return value if len(value) <= max_len else value[: max_len - 1] + "…"
