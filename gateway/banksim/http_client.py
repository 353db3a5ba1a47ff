"""The bank side of the JSON/HTTP API: signed requests (spec/http-api.md "Bank authentication")."""
from __future__ import annotations

import json
import secrets
import time
from typing import Any

import aiohttp

from gateway.http.auth import signature


class HttpBankClient:
    def __init__(self, base_url: str, bank: str, secret: str, *, timeout_s: float = 30.0,
                 local_host: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.bank = bank
        self.secret = secret
        # local_host: the source address to connect from (a bank behind a balancer, in tests).
        connector = aiohttp.TCPConnector(local_addr=(local_host, 0)) if local_host else None
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), connector=connector)

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> "HttpBankClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def headers(self, method: str, path_qs: str, body: bytes, *, timestamp: int | None = None,
                nonce: str | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_urlsafe(18)
        return {"X-Bank-Code": self.bank, "X-Timestamp": ts, "X-Nonce": nonce,
                "X-Signature": signature(secret or self.secret, method, path_qs, ts, nonce, body)}

    async def call(self, method: str, path_qs: str, body: Any = None, *, idempotency_key: str | None = None,
                   raw: bytes | None = None, extra_headers: dict[str, str] | None = None,
                   sign: bool = True, **sign_kw) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = self.headers(method, path_qs, data, **sign_kw) if sign else {}
        if data:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        headers.update(extra_headers or {})
        async with self.session.request(method, self.base_url + path_qs, data=data, headers=headers) as resp:
            content = await resp.read()
            ctype = resp.headers.get("Content-Type", "")
            parsed: Any = json.loads(content) if "json" in ctype and content else content
            return resp.status, resp.headers.copy(), parsed

    async def pbb_inquiry(self, nop: str, year: int | str):
        return await self.call("GET", f"/v1/pbb/bills/{nop}/{year}")

    async def bphtb_inquiry(self, registration: str, **query):
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return await self.call("GET", f"/v1/bphtb/bills/{registration}" + (f"?{qs}" if qs else ""))

    async def pbb_payment(self, key: str, **body):
        return await self.call("POST", "/v1/pbb/payments", body, idempotency_key=key)

    async def bphtb_payment(self, key: str, **body):
        return await self.call("POST", "/v1/bphtb/payments", body, idempotency_key=key)

    async def reversal(self, key: str, **body):
        return await self.call("POST", "/v1/reversals", body, idempotency_key=key)
