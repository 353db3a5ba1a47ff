"""Staff routes of settlement and reconciliation (spec/http-api.md "Staff routes"): the status and totals
of a business date, closing it, uploading a bank's reconciliation file, and the treasury statement.

Every route needs a staff credential (session or bearer token) of the right role, and every action that
changes something is written to the audit log.
"""
from __future__ import annotations

import datetime
import json

from aiohttp import web

from gateway.http.problems import Problem
from gateway.http.staff_auth import audit_staff, staff_user
from gateway.settlement.close import SettlementError, close_business_date, frozen_totals
from gateway.settlement.errors import ReconFileError
from gateway.settlement.recon import reconcile
from gateway.settlement.report import report_totals, settlement_report_csv, settlement_report_pdf

READ = {"support", "treasury", "admin"}
TREASURY = {"treasury", "admin"}
MAX_RECON_BYTES = 64 * 1024 * 1024

_REPORT_KEYS = ("payments_count", "principal", "penalty", "payments_amount", "reversals_count",
                "reversals_amount", "net_count", "net_amount")


def _day(request: web.Request) -> datetime.date:
    try:
        return datetime.date.fromisoformat(request.match_info["date"])
    except ValueError:
        raise Problem(400, "date must be YYYY-MM-DD", "30") from None


class StaffSettlementRoutes:
    def __init__(self, services):
        self.s = services

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
        day = _day(request)
        if request.method == "GET":
            await audit_staff(request, user, "settlement.view", day.isoformat())
        names = {b.code: b.name for b in self.s.config.banks}
        async with self.s.pool.acquire(timeout=3) as conn:
            state, items = await report_totals(conn, day)
            _, _, closed_at, closed_by = await frozen_totals(conn, day)
        rows, total = [], dict.fromkeys(_REPORT_KEYS, 0)
        for t in sorted(items, key=lambda t: (t.bank, 0 if t.tax == "PBB" else 1)):
            values = dict(zip(_REPORT_KEYS, (t.payments_count, t.principal, t.penalty, t.payments_amount,
                                             t.reversals_count, t.reversals_amount,
                                             t.payments_count - t.reversals_count,
                                             t.payments_amount - t.reversals_amount)))
            total = {k: total[k] + values[k] for k in _REPORT_KEYS}
            rows.append({"business_date": day.isoformat(), "bank_code": t.bank, "bank_name": names.get(t.bank, ""),
                         "tax": t.tax, **values})
        return web.json_response({
            "business_date": day.isoformat(), "status": state,
            "closed_at": closed_at.astimezone(self.s.tz).isoformat(timespec="seconds") if closed_at else None,
            "closed_by": closed_by, "rows": rows,
            "total": {"business_date": day.isoformat(), "bank_code": "TOTAL", "bank_name": "", "tax": "ALL", **total},
        })

    async def close(self, request: web.Request) -> web.Response:
        user = await staff_user(request, TREASURY)
        day = _day(request)
        try:
            result = await close_business_date(
                self.s.pool, day, now_utc=self.s.engine.ctx.clock.now(), tz=self.s.tz,
                cutoff=self.s.config.region.cutoff_time, operator=user.username)
        except SettlementError as exc:
            await audit_staff(request, user, "settlement.close.refused", day.isoformat(), {"reason": str(exc)})
            raise Problem(409, str(exc)) from None
        await audit_staff(request, user, "settlement.close", day.isoformat(),
                           {"already_closed": result.already_closed})
        return await self.status(request)

    async def upload(self, request: web.Request) -> web.Response:
        user = await staff_user(request, TREASURY)
        day = _day(request)
        bank = request.query.get("bank", "")
        if self.s.config.bank(bank) is None:
            raise Problem(400, "bank: a configured bank code is required (?bank=CODE)", "30")
        data = request["body"]
        try:
            async with self.s.pool.acquire(timeout=3) as conn:
                result = await reconcile(conn, day, bank, f"upload:{bank}", data)
        except ReconFileError as exc:
            raise Problem(400, str(exc), "30") from None
        await audit_staff(request, user, "reconciliation.import", f"{day.isoformat()}/{bank}",
                           {"report_id": result.report_id, "new_items": result.new_items, "counts": result.counts})
        return web.json_response({
            "summary": {c: result.counts.get(c, 0) for c in ("matched", "amount_mismatch", "status_mismatch",
                                                             "missing_at_gateway", "missing_at_bank")},
            "new_items": result.new_items,
            "rows": [dict(zip(("class", "ntpd", "bank_code", "tax", "bill_id", "gateway_amount", "bank_amount",
                               "gateway_status", "bank_status", "line"), r.values())) for r in result.rows],
        })

    async def reports(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        day = _day(request)
        await audit_staff(request, user, "reconciliation.view", day.isoformat())
        async with self.s.pool.acquire(timeout=3) as conn:
            rows = await conn.fetch(
                "SELECT id, bank_code, file_name, counts, new_items, imported_at FROM recon_reports"
                " WHERE business_date = $1 ORDER BY id", day)
        return web.json_response({"reports": [
            {"id": r["id"], "bank_code": r["bank_code"], "file_name": r["file_name"],
             "summary": json.loads(r["counts"]), "new_items": r["new_items"],
             "imported_at": r["imported_at"].astimezone(self.s.tz).isoformat(timespec="seconds")} for r in rows]})

    async def report_csv(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        await audit_staff(request, user, "settlement.report", f"{request.match_info['date']} csv")
        async with self.s.pool.acquire(timeout=3) as conn:
            text = await settlement_report_csv(conn, _day(request), self.s.config.banks)
        return web.Response(text=text, content_type="text/csv")

    async def report_pdf(self, request: web.Request) -> web.Response:
        user = await staff_user(request, READ)
        await audit_staff(request, user, "settlement.report", f"{request.match_info['date']} pdf")
        async with self.s.pool.acquire(timeout=3) as conn:
            pdf = await settlement_report_pdf(conn, _day(request), self.s.config)
        return web.Response(body=pdf, content_type="application/pdf")
