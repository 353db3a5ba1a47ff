import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import mod97_check, mod97_valid


def test_spec_example():
    # domain.md: first 12 202611000123 -> int * 100 % 97 = 42 -> check 56
    assert int("202611000123") * 100 % 97 == 42
    assert mod97_check("202611000123") == "56"
    assert mod97_valid("20261100012356")


def test_iban_style_known_value():
    # The IBAN GB82 WEST 1234 5698 7654 32, rearranged and converted to digits, is the textbook
    # MOD 97-10 example; its check digits are 82.
    payload = "32142829123456987654321611"  # W=32 E=14 S=28 T=29, 12345698765432, G=16 B=11
    assert mod97_check(payload) == "82"
    assert mod97_valid(payload + "82")


def test_check_is_zero_padded():
    # find a payload whose check is below 10 and make sure it is written with two digits
    payload = next(str(n) for n in range(1, 10_000) if 98 - n * 100 % 97 < 10)
    check = mod97_check(payload)
    assert len(check) == 2 and check.startswith("0")
    assert mod97_valid(payload + check)


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_appending_the_check_makes_a_valid_number(payload):
    check = mod97_check(payload)
    assert len(check) == 2
    assert 2 <= int(check) <= 98
    assert mod97_valid(payload + check)


@given(st.text(alphabet="0123456789", min_size=1, max_size=30), st.integers(0, 99))
def test_only_check_values_congruent_to_the_check_are_valid(payload, other):
    # Validity is "int(all) % 97 == 1" (domain.md), so besides the computed check (02..98) the value 97
    # apart is valid too when it fits in two digits: 01 beside 98, and 99 beside 02.
    assert mod97_valid(payload + f"{other:02d}") == ((other - int(mod97_check(payload))) % 97 == 0)


def test_the_congruent_twin_of_a_check_is_valid():
    assert mod97_check("0") == "98" and mod97_valid("001") and mod97_valid("098")


@pytest.mark.parametrize("bad", ["", "12a4", "１２", "٣٤", " 12", None, 1234])
def test_check_needs_ascii_digits(bad):
    with pytest.raises(ValueError):
        mod97_check(bad)


@pytest.mark.parametrize("bad", ["", "01", "1", "2026110001235a", "٢٠٢٦١١٠٠٠١٢٣٥٦", None, 20261100012356])
def test_valid_is_false_for_non_digits_and_too_short(bad):
    assert mod97_valid(bad) is False
