"""The aiohttp application: bank, public and health routes over the same services as ISO 8583."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from aiohttp import web

from gateway import metrics
from gateway.config import BankConfig, Config
from gateway.http.auth import authenticate, peer_address
from gateway.http.bank_routes import BankRoutes
from gateway.http.problems import Problem, problem_response
from gateway.http.public_routes import PublicRoutes
from gateway.http.staff_routes import MAX_RECON_BYTES, StaffSettlementRoutes
from gateway.http.staff_session_routes import StaffSessionRoutes
from gateway.http.staff_support_routes import StaffSupportRoutes
from gateway.payment.engine import Engine
from gateway.payment.unit import UNAVAILABLE
from gateway.proofs.keys import KeyStore
from gateway.store.message_log import LogRow, MessageLog

log = structlog.get_logger("gateway.http")

MAX_BODY_BYTES = 1024 * 1024
BANK_PREFIXES = ("/v1/pbb/", "/v1/bphtb/", "/v1/reversals", "/v1/payments")


@dataclass
class HttpServices:
    engine: Engine
    pool: asyncpg.Pool
    config: Config
    keys: KeyStore
    message_log: MessageLog | None = None
    in_flight: set = field(default_factory=set)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.region.tz

    @property
    def banks(self) -> dict[str, BankConfig]:
        return self.engine.ctx.banks


def build_app(services: HttpServices) -> web.Application:
    # The reconciliation upload may be 64 MiB; every other body is held to 1 MiB by the middleware.
    app = web.Application(middlewares=[_middleware(services)], client_max_size=MAX_RECON_BYTES)
    app["services"] = services
    app.add_routes(BankRoutes(services).routes())
    app.add_routes(PublicRoutes(services).routes())
    app.add_routes(StaffSessionRoutes(services).routes())
    app.add_routes(StaffSettlementRoutes(services).routes())
    app.add_routes(StaffSupportRoutes(services).routes())
    from gateway.http.openapi import openapi_route

    app.add_routes([openapi_route()])
    return app


def _middleware(services: HttpServices):
    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id", "")[:128] or uuid.uuid4().hex
        bound = log.bind(request_id=request_id, method=request.method, path=request.path)
        started = time.monotonic()
        is_bank = request.path.startswith(BANK_PREFIXES)
        metrics.IN_FLIGHT.labels("http").inc()
        bank: BankConfig | None = None
        try:
            try:
                limit = MAX_RECON_BYTES if request.path.endswith("/reconciliations") else MAX_BODY_BYTES
                if (request.content_length or 0) > limit:
                    raise Problem(413, f"body over {limit} bytes")
                request["body"] = await request.read()
                if len(request["body"]) > limit:
                    raise Problem(413, f"body over {limit} bytes")
                if is_bank:
                    bank = await authenticate(request, services.banks, services.pool, request["body"])
                    request["bank"] = bank
                response = await handler(request)
            except Problem as p:
                response = problem_response(p.status, p.detail, p.response_code, p.headers)
            except web.HTTPRequestEntityTooLarge:
                response = problem_response(413, f"body over {MAX_BODY_BYTES} bytes")
            except web.HTTPException as exc:
                if exc.status >= 400:
                    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
                    response = problem_response(exc.status, exc.reason or "error", headers=allow)
                else:
                    raise
            except UNAVAILABLE as exc:
                bound.warning("database unavailable", error=repr(exc))
                response = problem_response(503, "host unavailable", "91")
            except Exception:  # noqa: BLE001 - answered 500/96, logged once with context
                bound.exception("unexpected failure")
                response = problem_response(500, "system malfunction", "96")
        finally:
            metrics.IN_FLIGHT.labels("http").dec()
        response.headers["X-Request-Id"] = request_id
        elapsed = time.monotonic() - started
        if is_bank:
            _record(services, request, response, bank, request_id, elapsed)
        bound.info("answered", status=response.status, bank=bank.code if bank else None,
                   elapsed_ms=round(elapsed * 1000, 2))
        return response

    return middleware


def _record(services: HttpServices, request: web.Request, response: web.StreamResponse, bank: BankConfig | None,
            request_id: str, elapsed_s: float) -> None:
    """The bank routes' requests and answers go to the message log and the metrics, like ISO messages."""
    rc = answered_ntpd = None
    body = getattr(response, "body", None)
    if isinstance(body, (bytes, bytearray)) and response.content_type in ("application/json",
                                                                          "application/problem+json"):
        try:
            import json

            parsed = json.loads(body)
            rc = parsed.get("response_code") if isinstance(parsed, dict) else None
            answered_ntpd = parsed.get("ntpd") if isinstance(parsed, dict) else None
        except ValueError:
            pass
    # Metric labels come only from the route table and authenticated banks: a caller must not be able to
    # create new series (and memory) by inventing paths or bank codes.
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    code = bank.code if bank else None
    label = f"{request.method} {route}" if resource is not None else "unmatched"
    metrics.MESSAGES.labels("http", code or "-", label, "-", rc or str(response.status)).inc()
    metrics.LATENCY.labels("http", route).observe(elapsed_s)
    code = code or request.headers.get("X-Bank-Code", "")[:11] or None  # logged as claimed, not as a label
    if services.message_log is None:
        return
    now = datetime.now(UTC)
    peer = peer_address(request)
    common = dict(channel="http", bank_code=code, connection_id=request_id, peer=peer,
                  message_key=request.headers.get("Idempotency-Key"))
    services.message_log.add(LogRow(logged_at=now, direction="in", mti=request.method, detail=request.path_qs,
                                    fields={"method": request.method, "path": request.path_qs,
                                            "body_bytes": len(request.get("body") or b"")}, **common))
    ntpd = request.match_info.get("ntpd") or answered_ntpd
    services.message_log.add(LogRow(logged_at=now, direction="out", mti=str(response.status), response_code=rc,
                                    ntpd=ntpd, elapsed_ms=elapsed_s * 1000, detail=request.path_qs,
                                    fields={"status": response.status}, **common))
