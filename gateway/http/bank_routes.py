"""The bank routes of spec/http-api.md: inquiry, arrears, payment, reversal, payment status, receipt.

Every route is a thin adapter over the same service calls as ISO 8583. Business answers are HTTP 200 with a
response code; 30 is 400, 05 is 403, 90/91 are 503 and 96 is 500, as problem details.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aiohttp import web

from gateway.domain.errors import FormatError
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.proof import format_code
from gateway.domain.text import NTB_MAX, REASON_MAX, TERMINAL_ID_MAX
from gateway.http.edge import json_object, text_field
from gateway.http.message_rows import approval_row
from gateway.http.problems import Problem
from gateway.http.render import amount_json, arrears_json, inquiry_json, local_time, payment_json, reversal_json
from gateway.service.requests import (
    BphtbInquiry,
    BphtbPayment,
    MessageKey,
    PbbArrears,
    PbbInquiry,
    PbbPayment,
    Reversal,
)
from gateway.service.unit import answer_written
from gateway.service.views import paid_amount, relief_of

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")

PROBLEM_RC = {"30": (400, "malformed field"), "05": (403, "not allowed"),
              "90": (503, "cut-off in progress: try again shortly"),
              "91": (503, "host unavailable: the outcome of a payment may be unknown, reverse or repeat it"),
              "96": (500, "system malfunction")}


def business(result: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    rc = str(result.rc)
    if rc in PROBLEM_RC:
        status, detail = PROBLEM_RC[rc]
        raise Problem(status, detail, rc)
    return web.json_response(body, headers=headers)


class BankRoutes:
    def __init__(self, services):
        self.s = services  # HttpServices: engine, pool, config, keys, in-flight keys

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/pbb/bills/{nop}/{tax_year}", self.pbb_inquiry),
            web.get("/v1/pbb/bills/{nop}", self.pbb_arrears),
            web.post("/v1/pbb/payments", self.pbb_payment),
            web.get("/v1/bphtb/bills/{registration_number}", self.bphtb_inquiry),
            web.post("/v1/bphtb/payments", self.bphtb_payment),
            web.post("/v1/reversals", self.reversal),
            web.get("/v1/payments/{ntpd}", self.payment_status),
            web.get("/v1/payments/{ntpd}/receipt.pdf", self.receipt),
        ]

    # -- inquiries -----------------------------------------------------------------------------------

    async def pbb_inquiry(self, request: web.Request) -> web.Response:
        bank = request["bank"].code
        result = await self.s.engine.inquire_pbb(
            PbbInquiry(bank, request.match_info["nop"], request.match_info["tax_year"]))
        return business(result, inquiry_json(result, self.s.tz))

    async def pbb_arrears(self, request: web.Request) -> web.Response:
        result = await self.s.engine.arrears_pbb(PbbArrears(request["bank"].code, request.match_info["nop"]))
        return business(result, arrears_json(result))

    async def bphtb_inquiry(self, request: web.Request) -> web.Response:
        q = request.query
        result = await self.s.engine.inquire_bphtb(BphtbInquiry(
            request["bank"].code, request.match_info["registration_number"], q.get("nop") or None,
            q.get("tax_year") or None))
        return business(result, inquiry_json(result, self.s.tz))

    # -- payments and reversals ----------------------------------------------------------------------

    async def pbb_payment(self, request: web.Request) -> web.Response:
        body = json_body(request)
        req = PbbPayment(
            bank=request["bank"].code, nop=field(body, "nop", str), tax_year=field(body, "tax_year", (int, str)),
            amount=field(body, "amount", int), ntb=_ntb(body), channel=field(body, "channel", str),
            key=self._key(request), via="http", terminal_id=_terminal_id(body),
            answer_log=self._answer_log(request))
        return await self._idempotent(request, req, self.s.engine.pay_pbb(req), payment_json)

    async def bphtb_payment(self, request: web.Request) -> web.Response:
        body = json_body(request)
        req = BphtbPayment(
            bank=request["bank"].code, registration_number=field(body, "registration_number", str),
            amount=field(body, "amount", int), ntb=_ntb(body), channel=field(body, "channel", str),
            key=self._key(request), nop=optional(body, "nop", str), tax_year=optional(body, "tax_year", (int, str)),
            via="http", terminal_id=_terminal_id(body), answer_log=self._answer_log(request))
        return await self._idempotent(request, req, self.s.engine.pay_bphtb(req), payment_json)

    async def reversal(self, request: web.Request) -> web.Response:
        body = json_body(request)
        req = Reversal(bank=request["bank"].code, amount=field(body, "amount", int), key=self._key(request),
                       ntpd=field(body, "ntpd", str), via="http",
                       reason=text_field(body, "reason", REASON_MAX, "30", multiline=True, required=False) or "",
                       answer_log=self._answer_log(request))
        return await self._idempotent(request, req, self.s.engine.reverse(req), reversal_json)

    def _answer_log(self, request: web.Request):
        return approval_row(request) if self.s.message_log is not None else None

    def _key(self, request: web.Request) -> MessageKey:
        key = request.headers.get("Idempotency-Key", "")
        if not _IDEMPOTENCY_KEY.match(key):
            raise Problem(400, "Idempotency-Key header required: 1-64 visible ASCII characters", "30")
        content = "\n".join((request.method, request.path, hashlib.sha256(request["body"]).hexdigest()))
        return MessageKey("http", key, content)

    async def _idempotent(self, request: web.Request, req: PbbPayment | BphtbPayment | Reversal, call,
                          render) -> web.Response:
        assert req.key is not None  # every HTTP payment or reversal carries its Idempotency-Key (_key)
        scope = (request["bank"].code, req.key.key)
        if scope in self.s.in_flight:
            call.close()
            raise Problem(409, "a request with this Idempotency-Key is still being processed")
        self.s.in_flight.add(scope)
        try:
            result = await call
        finally:
            self.s.in_flight.discard(scope)
        # An approval (not a replay) committed its answer's log row with it: the middleware must not add it.
        request["answer_logged"] = answer_written(result, req.answer_log)
        if result.rc == "94":
            raise Problem(422, "Idempotency-Key reused with a different request", "94")
        headers = {"Idempotent-Replayed": "true"} if result.repeated else None
        return business(result, render(result), headers)

    # -- a bank's own payment ------------------------------------------------------------------------

    async def _own_payment(self, request: web.Request):
        try:
            ntpd = parse_ntpd(request.match_info["ntpd"])
        except FormatError:
            raise Problem(404, "no such payment") from None
        row = await self.s.lookups.payment(ntpd)
        if row is None or row["bank_code"] != request["bank"].code:
            raise Problem(404, "no such payment")  # another bank's NTPD is not revealed to exist
        return row

    async def payment_status(self, request: web.Request) -> web.Response:
        row = await self._own_payment(request)
        body = {
            "ntpd": row["ntpd"], "status": "reversed" if row["reversed_at"] else "paid", "tax": row["tax"],
            "bill_id": row["bill_key"], "tax_year": row["tax_year"], "business_date": row["business_date"].isoformat(),
            "paid_at": local_time(row["paid_at"], self.s.tz),
            "reversed_at": local_time(row["reversed_at"], self.s.tz) if row["reversed_at"] else None,
            "amount": amount_json(paid_amount(row), row["tax"], months=False),
            "channel": row["channel"], "ntb": row["ntb"],
            "proof": json.loads(row["document"]) if row["document"] else None,
            "signature": row["signature"], "kid": row["kid"],
            "validation_code": format_code(row["validation_code"]) if row["validation_code"] else None,
        }
        return web.json_response(body)

    async def receipt(self, request: web.Request) -> web.Response:
        from gateway.proofs.receipt import receipt_pdf

        row = await self._own_payment(request)
        if row["document"] is None:
            raise Problem(404, "this payment has no signed proof")
        proof = json.loads(row["document"])
        code = row["validation_code"]
        verify_url = f"{self.s.config.http.public_url.rstrip('/')}/v1/proofs/{row['ntpd']}?code={code}"
        pdf = receipt_pdf(proof=proof, validation_code=code, verify_url=verify_url,
                          region_name=self.s.config.region.name, bank_name=request["bank"].name,
                          status="reversed" if row["reversed_at"] else "paid", relief=relief_of(row))
        return web.Response(body=pdf, content_type="application/pdf",
                            headers={"Content-Disposition": f'inline; filename="{row["ntpd"]}.pdf"'})


def json_body(request: web.Request, rc: str | None = "30") -> dict[str, Any]:
    """The body as a JSON object under the text rules (gateway/http/edge.py), else Problem 400 (RC ``rc``)."""
    return json_object(request, rc)


def _ntb(body: dict[str, Any]) -> str:
    return text_field(body, "ntb", NTB_MAX, "30")


def _terminal_id(body: dict[str, Any]) -> str:
    return text_field(body, "terminal_id", TERMINAL_ID_MAX, "30", required=False) or ""


def field(body: dict[str, Any], name: str, kind) -> Any:
    value = body.get(name)
    if value is None:
        raise Problem(400, f"{name}: missing", "30")
    if isinstance(value, bool) or not isinstance(value, kind):
        raise Problem(400, f"{name}: wrong type", "30")
    return value


def optional(body: dict[str, Any], name: str, kind) -> Any:
    return None if body.get(name) is None else field(body, name, kind)
