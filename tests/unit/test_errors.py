import pytest

from gateway.domain import FormatError


def test_format_error_carries_field_and_reason():
    err = FormatError("nop", "must have 18 digits")
    assert err.field == "nop"
    assert err.reason == "must have 18 digits"
    assert str(err) == "nop: must have 18 digits"


def test_format_error_is_a_value_error():
    # Generic "bad value" handlers must catch it too.
    with pytest.raises(ValueError):
        raise FormatError("amount", "negative")
