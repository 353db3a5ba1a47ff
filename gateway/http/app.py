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
from aiohttp.web_protocol import RequestPayloadError

from gateway import metrics
from gateway.config import BankConfig, Config
from gateway.console import mount as mount_console
from gateway.domain.text import loggable
from gateway.engine import Engine
from gateway.http.auth import authenticate
from gateway.http.bank_routes import BankRoutes
from gateway.http.edge import check_request, usable_request_id
from gateway.http.message_rows import answer_row, request_row
from gateway.http.problems import Problem, problem_response
from gateway.http.public_routes import PublicRoutes
from gateway.http.staff_routes import StaffSettlementRoutes
from gateway.http.staff_session_routes import StaffSessionRoutes
from gateway.http.staff_support_routes import StaffSupportRoutes
from gateway.proofs.keys import KeyStore
from gateway.service.lookups import Lookups
from gateway.service.ports import MessageSink
from gateway.service.unit import UNAVAILABLE
from gateway.settlement.service import TreasuryService
from gateway.staff.dashboard import DashboardService
from gateway.staff.support import SupportService
from gateway.staff.tax_object import TaxObjectService

log = structlog.get_logger("gateway.http")

BANK_PREFIXES = ("/v1/pbb/", "/v1/bphtb/", "/v1/reversals", "/v1/payments")


@dataclass
class HttpServices:
    engine: Engine
    pool: asyncpg.Pool
    config: Config
    keys: KeyStore
    lookups: Lookups
    support: SupportService
    treasury: TreasuryService
    tax_objects: TaxObjectService
    dashboard: DashboardService
    message_log: MessageSink | None = None
    in_flight: set = field(default_factory=set)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.region.tz

    @property
    def banks(self) -> dict[str, BankConfig]:
        return self.engine.ctx.banks


def build_app(services: HttpServices) -> web.Application:
    # The reconciliation upload may be max_upload_bytes; every other body is held to max_body_bytes by the
    # middleware.
    app = web.Application(middlewares=[_middleware(services)], client_max_size=services.config.http.max_upload_bytes)
    app["services"] = services
    app.add_routes(BankRoutes(services).routes())
    app.add_routes(PublicRoutes(services).routes())
    app.add_routes(StaffSessionRoutes(services).routes())
    app.add_routes(StaffSettlementRoutes(services).routes())
    app.add_routes(StaffSupportRoutes(services).routes())
    from gateway.http.openapi import openapi_route

    app.add_routes([openapi_route()])
    mount_console(app, services)  # /console/: the staff web console over the same services
    return app


def _middleware(services: HttpServices):
    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        # An X-Request-Id that cannot be echoed and logged as it is (control characters, not ASCII, over 128
        # characters) is replaced, never cut or cleaned: a cleaned id would no longer be the caller's.
        request_id = usable_request_id(request.headers.get("X-Request-Id")) or uuid.uuid4().hex
        bound = log.bind(request_id=request_id, method=loggable(request.method, 16),
                         path=loggable(request.raw_path, 200))
        started = time.monotonic()
        request["request_id"], request["started"], request["received_at"] = request_id, started, datetime.now(UTC)
        is_bank = request.path.startswith(BANK_PREFIXES)
        metrics.IN_FLIGHT.labels("http").inc()
        bank: BankConfig | None = None
        try:
            try:
                # The text rules first: a request target or a header value that is no clean text is refused
                # (400, RC 30 on every route, as the OpenAPI document says) before authentication, so that
                # nothing of it is hashed, looked up or stored.
                check_request(request, "30")
                limits = services.config.http
                limit = limits.max_upload_bytes if request.path.endswith("/reconciliations") else limits.max_body_bytes
                if (request.content_length or 0) > limit:
                    raise Problem(413, f"body over {limit} bytes")
                try:
                    request["body"] = await request.read()
                except RequestPayloadError:  # a body the parser could not read (a bad chunk, bad gzip)
                    raise Problem(400, "malformed request body", "30") from None
                if len(request["body"]) > limit:
                    raise Problem(413, f"body over {limit} bytes")
                if is_bank:
                    bank = await authenticate(request, services.banks, request["body"],
                                              services.lookups.claim_nonce)
                    request["bank"] = bank
                response = await handler(request)
            except Problem as p:
                response = problem_response(p.status, p.detail, p.response_code, p.headers)
            except web.HTTPRequestEntityTooLarge:
                response = problem_response(413, f"body over {services.config.http.max_body_bytes} bytes")
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
            _record(services, request, response, bank, elapsed)
        bound.info("answered", status=response.status, bank=bank.code if bank else None,
                   elapsed_ms=round(elapsed * 1000, 2))
        return response

    return middleware


def _record(services: HttpServices, request: web.Request, response: web.StreamResponse, bank: BankConfig | None,
            elapsed_s: float) -> None:
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
    services.message_log.add(request_row(request, code))
    if not request.get("answer_logged"):  # an approval's answer row was written with the payment
        ntpd = request.match_info.get("ntpd") or answered_ntpd
        services.message_log.add(answer_row(request, code, response.status, rc, ntpd))
