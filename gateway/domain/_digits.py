"""Digit-string checks shared by the identifier parsers."""

_ASCII_DIGITS = frozenset("0123456789")


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty string of 0-9 only.

    `str.isdigit()` also accepts e.g. Arabic-Indic or superscript digits, and `int()` converts the
    former, so a naive check would let "٣٢٧٥..." through as a valid NOP or amount.
    """
    return isinstance(text, str) and bool(text) and _ASCII_DIGITS.issuperset(text)
