"""Staff routes of settlement and reconciliation (spec/http-api.md "Staff routes"): the status and totals
of a business date, closing it, uploading a bank's reconciliation file, and the treasury statement.

Every route needs a staff credential (session or bearer token) of the right role, and every action that
changes something is written to the audit log.
"""
from __future__ import annotations

import datetime
import json
import re

from aiohttp import web

from gateway.http.problems import Problem
from gateway.http.staff_auth import actor, staff_user
from gateway.settlement.close import SettlementError
from gateway.settlement.errors import ReconFileError
from gateway.settlement.invariants import REPORT_KEYS, report_table
from gateway.staff.support import Actor

READ = {"support", "treasury", "admin"}
TREASURY = {"treasury", "admin"}


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _day(request: web.Request) -> datetime.date:
    raw = request.match_info["date"]
    try:
        if not _DATE.match(raw):  # fromisoformat alone also takes 20261123 and week dates
            raise ValueError(raw)
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise Problem(400, "date must be YYYY-MM-DD", "30") from None


class StaffSettlementRoutes:
    """The routes translate; the use cases and their audit rows are the treasury service's."""

    def __init__(self, services):
        self.s = services
        self.treasury = services.treasury

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/settlements/{date}", self.status),
            web.post("/v1/settlements/{date}/close", self.close),
            web.post("/v1/settlements/{date}/reconciliations", self.upload),
            web.get("/v1/settlements/{date}/reconciliations", self.reports),
            web.get("/v1/settlements/{date}/report.csv", self.report_csv),
            web.get("/v1/settlements/{date}/report.pdf", self.report_pdf),
        ]

    async def status(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        return await self._status(_day(request), actor(request, user))

    async def _status(self, day: datetime.date, who: Actor | None) -> web.Response:
        names = {b.code: b.name for b in self.s.config.banks}
        found = await self.treasury.status(who, day)
        lines, sums = report_table(found.totals)
        rows = [{"business_date": day.isoformat(), "bank_code": t.bank, "bank_name": names.get(t.bank, ""),
                 "tax": t.tax, **dict(zip(REPORT_KEYS, values))} for t, values in lines]
        total = dict(zip(REPORT_KEYS, sums))
        closed_at = found.closed_at
        return web.json_response({
            "business_date": day.isoformat(), "status": found.state,
            "closed_at": closed_at.astimezone(self.s.tz).isoformat(timespec="seconds") if closed_at else None,
            "closed_by": found.closed_by, "rows": rows,
            "total": {"business_date": day.isoformat(), "bank_code": "TOTAL", "bank_name": "", "tax": "ALL", **total},
        })

    async def close(self, request: web.Request) -> web.Response:
        user = await staff_user(request, TREASURY)
        day = _day(request)
        try:
            await self.treasury.close(actor(request, user), day, self.s.engine.ctx.clock.now())
        except SettlementError as exc:
            raise Problem(409, str(exc)) from None
        return await self._status(day, None)  # the close itself is the audited action

    async def upload(self, request: web.Request) -> web.Response:
        user = await staff_user(request, TREASURY)
        day = _day(request)
        bank = request.query.get("bank", "")
        if self.s.config.bank(bank) is None:
            raise Problem(400, "bank: a configured bank code is required (?bank=CODE)", "30")
        try:
            result = await self.treasury.reconcile(actor(request, user), day, bank, request["body"])
        except ReconFileError as exc:
            raise Problem(400, str(exc), "30") from None
        return web.json_response({
            "summary": {c: result.counts.get(c, 0) for c in ("matched", "amount_mismatch", "status_mismatch",
                                                             "missing_at_gateway", "missing_at_bank")},
            "new_items": result.new_items,
            "rows": [dict(zip(("class", "ntpd", "bank_code", "tax", "bill_id", "gateway_amount", "bank_amount",
                               "gateway_status", "bank_status", "line"), r.values())) for r in result.rows],
        })

    async def reports(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        rows = await self.treasury.reports(actor(request, user), _day(request))
        return web.json_response({"reports": [
            {"id": r["id"], "bank_code": r["bank_code"], "file_name": r["file_name"],
             "summary": json.loads(r["counts"]), "new_items": r["new_items"],
             "imported_at": r["imported_at"].astimezone(self.s.tz).isoformat(timespec="seconds")} for r in rows]})

    async def report_csv(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        text = await self.treasury.statement_csv(actor(request, user), _day(request))
        return web.Response(text=text, content_type="text/csv")

    async def report_pdf(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        pdf = await self.treasury.statement_pdf(actor(request, user), _day(request))
        return web.Response(body=pdf, content_type="application/pdf")
