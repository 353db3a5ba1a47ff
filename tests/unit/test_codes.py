import pytest

from gateway.domain import RC, message

# iso8583.md "Response codes": code -> (enum name, message)
EXPECTED = {
    "00": ("APPROVED", "approved"),
    "05": ("DO_NOT_HONOUR", "do not honour"),
    "12": ("INVALID_TRANSACTION", "invalid transaction"),
    "13": ("INVALID_AMOUNT", "invalid amount"),
    "14": ("BILL_NOT_FOUND", "bill not found"),
    "30": ("FORMAT_ERROR", "format error"),
    "33": ("NOT_PAYABLE", "bill not payable"),
    "57": ("REVERSAL_NOT_PERMITTED", "reversal not permitted"),
    "88": ("ALREADY_PAID", "already paid"),
    "90": ("CUTOFF_IN_PROGRESS", "cut-off in progress"),
    "91": ("HOST_UNAVAILABLE", "host unavailable"),
    "94": ("DUPLICATE", "duplicate transmission"),
    "96": ("SYSTEM_ERROR", "system malfunction"),
}


def test_exactly_the_codes_of_the_spec():
    assert {rc.value for rc in RC} == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_values_names_and_messages(code):
    name, text = EXPECTED[code]
    rc = RC[name]
    assert rc == code  # StrEnum: compares equal to the wire value
    assert str(rc) == code and f"{rc}" == code
    assert message(rc) == text
    assert message(code) == text  # plain strings too (stored rows)


def test_unknown_code_has_no_message():
    with pytest.raises(ValueError):
        message("99")
