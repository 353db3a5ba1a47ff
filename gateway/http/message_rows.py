"""The message-log rows of a bank route's request and answer (spec/operations.md "Records kept").

Built in one place for both writers: the middleware queues them after the answer; the payment and reversal
routes hand ``approval_row`` to the service so that an approval's answer row is written by the payment's
own transaction (a crash never loses it).
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.domain.log_row import LogRow
from gateway.http.auth import peer_address


def _common(request: web.Request, bank_code: str | None) -> dict[str, Any]:
    return dict(channel="http", bank_code=bank_code, connection_id=request.get("request_id"),
                peer=peer_address(request), message_key=request.headers.get("Idempotency-Key"))


def request_row(request: web.Request, bank_code: str | None) -> LogRow:
    # Stamped with its arrival, so that the log reads in order beside an answer row written earlier than it.
    return LogRow(logged_at=request.get("received_at") or datetime.now(UTC), direction="in", mti=request.method,
                  detail=request.path_qs, fields={"method": request.method, "path": request.path_qs,
                          "body_bytes": len(request.get("body") or b"")}, **_common(request, bank_code))


def answer_row(request: web.Request, bank_code: str | None, status: int, rc: str | None,
               ntpd: str | None) -> LogRow:
    elapsed_ms = (time.monotonic() - request["started"]) * 1000 if "started" in request else None
    return LogRow(logged_at=datetime.now(UTC), direction="out", mti=str(status), response_code=rc, ntpd=ntpd,
                  elapsed_ms=elapsed_ms, detail=request.path_qs, fields={"status": status},
                  **_common(request, bank_code))


def approval_row(request: web.Request):
    """The service's ``answer_log`` for a payment or reversal route: the 200 answer of an approval."""
    bank_code = request["bank"].code

    def row(result: Any) -> LogRow:
        return answer_row(request, bank_code, 200, str(result.rc), result.ntpd)

    return row
