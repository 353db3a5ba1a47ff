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

import asyncpg
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


def peer_address(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer[0] if peer else ""


def _client_fingerprint(request: web.Request) -> str | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    cert = ssl_object.getpeercert(True)
    return hashlib.sha256(cert).hexdigest() if cert else None


async def authenticate(request: web.Request, banks: dict[str, BankConfig], pool: asyncpg.Pool,
                       body: bytes) -> BankConfig:
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
    expected = signature(secret, request.method, request.path_qs, timestamp, nonce, body)
    if not secret or not hmac.compare_digest(expected, given):
        raise Problem(401, "wrong signature")
    expected_cert = bank.client_cert_fingerprint.replace(":", "").lower()
    if expected_cert and _client_fingerprint(request) != expected_cert:
        raise Problem(401, "TLS client certificate required for this bank")
    async with pool.acquire(timeout=3) as conn:
        fresh = await conn.fetchval(
            "INSERT INTO http_nonces (bank_code, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
            bank.code, nonce)
    if fresh is None:
        raise Problem(401, "nonce already used (replay)")
    return bank
