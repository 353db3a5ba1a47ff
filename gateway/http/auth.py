"""Bank request signatures (spec/http-api.md "Bank authentication").

Checked in the spec's order: source address outside the bank's allow list → 403 (RC 05); a missing or
malformed header, an unknown bank, a stale timestamp or a wrong signature → 401; a nonce the bank already
used within the window (a replay) → 401. The testing clock offset never applies here.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.config import BankConfig
from gateway.http.problems import Problem

WINDOW_S = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# ASCII digits only, bounded: str.isdigit() also accepts "¹²³" (int() then raises) and int() refuses
# strings of more than 4300 digits; either would have been a 500 instead of a 401.
_TIMESTAMP = re.compile(r"^[0-9]{1,16}$")


def signature(secret: str, method: str, path_qs: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = "\n".join((method, path_qs, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def raw_target(request: web.Request) -> str:
    """The request target (path and query) as the client sent it; the edge has checked it is UTF-8."""
    return request.raw_path


def peer_address(request: web.Request) -> str:
    """The client's address: the socket's peer, or what a trusted balancer's PROXY header named."""
    return request.remote or ""


def _client_fingerprint(request: web.Request) -> str | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    cert = ssl_object.getpeercert(True)
    return hashlib.sha256(cert).hexdigest() if cert else None


async def authenticate(request: web.Request, banks: dict[str, BankConfig], body: bytes,
                       claim_nonce: Callable[[str, str], Awaitable[bool]]) -> BankConfig:
    """The bank a request comes from, else Problem 401/403. ``claim_nonce(bank, nonce)`` records a nonce and
    is False for one already used."""
    code = request.headers.get("X-Bank-Code", "")
    bank = banks.get(code)
    if bank is not None and not bank.allows_address(peer_address(request)):
        raise Problem(403, "source address not allowed for this bank", "05")
    timestamp = request.headers.get("X-Timestamp", "")
    nonce = request.headers.get("X-Nonce", "")
    given = request.headers.get("X-Signature", "")
    if not code or not _TIMESTAMP.match(timestamp) or not _NONCE.match(nonce) or not _HEX64.match(given):
        raise Problem(401, "missing or malformed X-Bank-Code, X-Timestamp, X-Nonce or X-Signature")
    if bank is None:
        raise Problem(401, "unknown bank")
    if abs(time.time() - int(timestamp)) > WINDOW_S:
        raise Problem(401, f"stale timestamp: more than {WINDOW_S} s from the gateway's clock")
    secret = bank.secret()
    # Over the request target exactly as sent: aiohttp's path_qs is rebuilt from the parsed URL and drops a
    # bare "?" (and would re-encode what yarl normalises), so a correctly signed request would fail.
    expected = signature(secret, request.method, raw_target(request), timestamp, nonce, body)
    if not secret or not hmac.compare_digest(expected, given):
        raise Problem(401, "wrong signature")
    expected_cert = bank.client_cert_fingerprint.replace(":", "").lower()
    if expected_cert and _client_fingerprint(request) != expected_cert:
        raise Problem(401, "TLS client certificate required for this bank")
    if not await claim_nonce(bank.code, nonce):
        raise Problem(401, "nonce already used (replay)")
    return bank
