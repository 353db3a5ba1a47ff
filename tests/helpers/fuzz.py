"""Damage to a valid ISO 8583 message, for the fuzz tests of the codec and of a running gateway."""
from __future__ import annotations

from hypothesis import strategies as st

# What any damage may be; a fuzz test adds its own kinds beside these.
ACTIONS = ("flip", "truncate", "insert", "delete", "digit")


def digit_runs(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of each run of ASCII digits: length prefixes, numeric fields and the MTI."""
    runs, start = [], None
    for i, b in enumerate(raw + b"x"):
        if 0x30 <= b <= 0x39 and start is None:
            start = i
        elif not 0x30 <= b <= 0x39 and start is not None:
            runs.append((start, i))
            start = None
    return runs


def damage(draw, raw: bytearray, action: str, pos: int, max_bytes: int) -> None:
    """Apply one of ``ACTIONS`` at ``pos`` (in place): a bit flipped, the rest cut off, up to ``max_bytes``
    bytes inserted or deleted, or one digit of a digit run changed."""
    if action == "flip" and raw:
        raw[pos] ^= 1 << draw(st.integers(0, 7))
    elif action == "truncate":
        del raw[pos:]
    elif action == "insert":
        raw[pos:pos] = draw(st.binary(min_size=1, max_size=max_bytes))
    elif action == "delete":
        del raw[pos:pos + draw(st.integers(1, max_bytes))]
    elif action == "digit":
        runs = digit_runs(bytes(raw))
        if runs:
            start, end = draw(st.sampled_from(runs))
            raw[draw(st.integers(start, end - 1))] = draw(st.sampled_from(b"0123456789"))
