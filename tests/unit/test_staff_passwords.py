"""Staff password hashes: scrypt, self-describing, constant-time verification, a minimum length."""
from __future__ import annotations

import base64

import pytest

from gateway.staff.passwords import MIN_LENGTH, PasswordError, check_policy, hash_password, verify_password

PASSWORD = "correct horse battery"


def test_format_is_scrypt_with_parameters_salt_and_hash():
    encoded = hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**15), "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert PASSWORD not in encoded


def test_salt_is_fresh_each_time():
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_verify_right_and_wrong_password():
    encoded = hash_password(PASSWORD)
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + "x", encoded)
    assert not verify_password(PASSWORD.upper(), encoded)
    assert not verify_password("", encoded)


def test_verify_uses_the_stored_parameters():
    encoded = hash_password(PASSWORD, n=2**10)
    assert encoded.startswith("scrypt$1024$8$1$")
    assert verify_password(PASSWORD, encoded)


@pytest.mark.parametrize("bad", ["", "scrypt", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==",
                                 "scrypt$1000$8$1$AAAA$AAAA", "scrypt$1024$8$1$!!$AAAA",
                                 f"scrypt${2**30}$8$1$AAAA$AAAA"])
def test_unreadable_hashes_never_verify(bad):
    assert not verify_password(PASSWORD, bad)


def test_minimum_length():
    assert MIN_LENGTH == 12
    with pytest.raises(PasswordError):
        hash_password("a" * 11)
    with pytest.raises(PasswordError):
        check_policy("short")
    check_policy("a" * 12)
    assert verify_password("a" * 12, hash_password("a" * 12))
