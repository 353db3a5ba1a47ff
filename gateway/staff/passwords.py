"""Staff password hashes: scrypt (``cryptography``), encoded ``scrypt$n$r$p$salt_b64$hash_b64``."""
from __future__ import annotations

import base64
import hmac
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MIN_LENGTH = 12
N, R, P = 2**15, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds on parameters read back from the database: a tampered row must not make verify() eat the machine.
_MAX_N = 2**20


class PasswordError(ValueError):
    """A password the policy refuses (too short)."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"password must be at least {MIN_LENGTH} characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _kdf(salt: bytes, n: int, r: int, p: int, length: int) -> Scrypt:
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p)


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """The encoded scrypt hash of ``password`` (which must meet the policy) with a fresh random salt."""
    check_policy(password)
    salt = os.urandom(SALT_BYTES)
    digest = _kdf(salt, n, r, p, HASH_BYTES).derive(password.encode("utf-8"))
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for a mismatch or an unreadable hash."""
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = encoded.split("$")
        if scheme != "scrypt":
            return False
        n, r, p = int(n_text), int(r_text), int(p_text)
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            return False
        salt = base64.b64decode(salt_text, validate=True)
        expected = base64.b64decode(hash_text, validate=True)
    except (ValueError, TypeError):
        return False
    if not salt or not expected:
        return False
    try:
        actual = _kdf(salt, n, r, p, len(expected)).derive(password.encode("utf-8"))
    except (InvalidKey, ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to verify against when the user does not exist, so that a wrong username costs as much time as
# a wrong password (no user enumeration by timing). Computed lazily: it costs one scrypt run.
_DUMMY: str | None = None


def dummy_verify(password: str) -> bool:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password("x" * MIN_LENGTH)
    verify_password(password, _DUMMY)
    return False
