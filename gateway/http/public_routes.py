"""Public routes: the proof check anyone can make, the published keys, health, readiness, metrics."""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import metrics
from gateway.domain.errors import FormatError
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.proof import mask_bill_id, mask_name, normalize_code
from gateway.http.auth import peer_address
from gateway.http.problems import Problem
from gateway.store.migrate import current_version, latest_version
from gateway.store.proofs import payment_with_proof


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests, refilled continuously. Bounded memory:
    the least recently seen addresses are forgotten first."""

    def __init__(self, per_minute: int, max_clients: int = 100_000):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        tokens, last = self.buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


class PublicRoutes:
    def __init__(self, services, proof_checks_per_minute: int = 60):
        self.s = services
        self.limiter = RateLimiter(proof_checks_per_minute)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/proofs/keys", self.keys),
            web.get("/v1/proofs/{ntpd}", self.proof),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.s.keys.public_keys())

    async def proof(self, request: web.Request) -> web.Response:
        wait = self.limiter.check(peer_address(request))
        if wait:
            raise Problem(429, "too many proof checks from this address", headers={"Retry-After": str(math.ceil(wait))})
        raw = request.match_info["ntpd"]
        code = normalize_code(request.query.get("code", ""))
        unknown = web.json_response({"status": "unknown", "ntpd": raw})
        try:
            ntpd = parse_ntpd(raw)
        except FormatError:
            return unknown
        if code is None:
            return unknown
        async with self.s.pool.acquire(timeout=3) as conn:
            row = await payment_with_proof(conn, ntpd)
        # A wrong code answers exactly like an unknown NTPD: the check never reveals that a payment exists.
        if row is None or row["validation_code"] is None or row["validation_code"] != code:
            return unknown
        document = json.loads(row["document"])
        return web.json_response({
            "status": "reversed" if row["reversed_at"] else "valid", "ntpd": ntpd, "tax": row["tax"],
            "bill_masked": mask_bill_id(document["bill"]), "tax_year": document["tax_year"],
            "taxpayer_masked": mask_name(document["taxpayer"]), "total": document["total"],
            "business_date": document["business_date"], "bank": document["bank"],
        })

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        body = {"database": "unreachable", "migrations": None,
                "clock_offset_seconds": self.s.config.clock_offset_seconds}
        status = 503
        try:
            async with self.s.pool.acquire(timeout=2) as conn:
                version = await conn.fetchval("SELECT 1") and await current_version(conn)
            body["database"] = "ok"
            body["migrations"] = {"current": version, "expected": latest_version()}
            if version == latest_version():
                status = 200
        except Exception as exc:  # noqa: BLE001 - readiness says why, never raises
            body["error"] = type(exc).__name__
        body["status"] = "ready" if status == 200 else "not ready"
        return web.json_response(body, status=status)

    async def metrics(self, request: web.Request) -> web.Response:
        pool = self.s.pool
        metrics.POOL_SIZE.set(pool.get_size())
        metrics.POOL_IDLE.set(pool.get_idle_size())
        if self.s.message_log is not None:
            metrics.MESSAGE_LOG_DROPPED.set(self.s.message_log.dropped)
        return web.Response(body=generate_latest(metrics.REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
