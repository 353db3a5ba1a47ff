"""Treasury's and the admin's pages: settlement of a date, its reports and reconciliation upload, the audit log."""
from __future__ import annotations

import json
from datetime import date
from urllib.parse import urlencode

from aiohttp import web

from gateway.console.common import USERNAME_MAX, _banks, _day, _notice, _services, _today, _totals
from gateway.console.format import RECON_CLASS
from gateway.console.web import (
    ADMIN,
    PREFIX,
    TREASURY,
    Refused,
    actor,
    form,
    redirect,
    render,
    require,
    text,
)
from gateway.domain.errors import FormatError
from gateway.domain.text import is_clean
from gateway.settlement.errors import ReconFileError, SettlementError
from gateway.staff.support import AUDIT_PAGE, before_id


async def settlement(request: web.Request) -> web.Response:
    user = await require(request)
    raw = request.query.get("tanggal", "")
    day = _day(raw) if raw else _today(request)
    return await _settlement_page(request, user, day)


async def _settlement_page(request: web.Request, user, day: date, *, status: int = 200, error: str | None = None,
                           report=None) -> web.Response:
    s = _services(request)
    who = actor(request, user)
    found = await s.treasury.status(who, day)
    reports = await s.treasury.reports(who, day)
    may_close = user.role in TREASURY and found.state != "closed"
    return render(request, "settlement.html", {
        "day": day, "found": found, **_totals(request, found), "reports": [
            {**dict(r), "summary": _summary(json.loads(r["counts"]))} for r in reports],
        "may_close": may_close, "may_upload": user.role in TREASURY, "banks": _banks(request),
        "notice": _notice(request), "error": error, "report": report}, status=status)


def _summary(counts: dict[str, int]) -> list[tuple[str, int]]:
    """A report's counts in the report's class order, the classes it had only."""
    return [(cls, counts[cls]) for cls in RECON_CLASS if counts.get(cls)]


async def close_confirm(request: web.Request) -> web.Response:
    user = await require(request, TREASURY)
    day = _day(request.match_info["date"])
    found = await _services(request).treasury.status(actor(request, user), day)
    return render(request, "close.html", {"day": day, "found": found, **_totals(request, found), "error": None})


async def close(request: web.Request) -> web.Response:
    user = await require(request, TREASURY)
    day = _day(request.match_info["date"])
    s = _services(request)
    try:
        await s.treasury.close(actor(request, user), day, s.engine.ctx.clock.now())
    except SettlementError as exc:
        found = await s.treasury.status(None, day)  # the refused close is the audited action
        return render(request, "close.html", {"day": day, "found": found, **_totals(request, found),
                                              "error": f"Tanggal tidak dapat ditutup: {exc}"}, status=409)
    return redirect(f"{PREFIX}/setelmen?tanggal={day.isoformat()}&pesan=ditutup")


async def report_csv(request: web.Request) -> web.Response:
    user = await require(request)
    day = _day(request.match_info["date"])
    body = await _services(request).treasury.statement_csv(actor(request, user), day)
    return web.Response(text=body, content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="setelmen-{day.isoformat()}.csv"'})


async def report_pdf(request: web.Request) -> web.Response:
    user = await require(request)
    day = _day(request.match_info["date"])
    body = await _services(request).treasury.statement_pdf(actor(request, user), day)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="setelmen-{day.isoformat()}.pdf"'})


async def upload(request: web.Request) -> web.Response:
    user = await require(request, TREASURY)
    day = _day(request.match_info["date"])
    fields = await form(request)
    bank = fields.get("bank") if isinstance(fields.get("bank"), str) else ""
    if not bank or _services(request).config.bank(bank) is None:
        raise Refused(400, "Pilih bank yang mengirim berkas rekonsiliasi.")
    sent = fields.get("berkas")
    if not isinstance(sent, tuple) or not sent[1]:
        raise Refused(400, "Pilih berkas rekonsiliasi (CSV) untuk diunggah.")
    filename, data = sent
    source = f"upload:{bank}:{filename}" if is_clean(filename, 200) else f"upload:{bank}"
    try:
        result = await _services(request).treasury.reconcile(actor(request, user), day, bank, data, source)
    except ReconFileError as exc:
        return await _settlement_page(request, user, day, status=400,
                                      error=f"Berkas rekonsiliasi tidak dapat dipakai: {exc}")
    return render(request, "recon_report.html", {"day": day, "bank": bank, "result": result})


# -- Audit ---------------------------------------------------------------------------------------------


async def audit_log(request: web.Request) -> web.Response:
    user = await require(request, ADMIN)
    q = request.query
    values = {k: q.get(k, "") for k in ("pengguna", "aksi", "tanggal")}
    who = text(values, "pengguna", USERNAME_MAX) or None
    action = text(values, "aksi", 64) or None
    day = _day(values["tanggal"]) if values["tanggal"] else None
    before = None
    if q.get("sebelum"):
        try:
            before = before_id(q["sebelum"], "sebelum")
        except FormatError as exc:
            raise Refused(400, f"Isian tidak valid: {exc}") from None
    s = _services(request)
    rows = await s.support.audit_entries(actor(request, user), user=who, action=action, day=day,
                                         tz_name=s.config.region.timezone, before=before)
    next_url = None
    if len(rows) >= AUDIT_PAGE:
        kept = {k: v for k, v in values.items() if v}
        next_url = PREFIX + "/audit?" + urlencode({**kept, "sebelum": rows[-1]["id"]})
    entries = [{**dict(r), "detail": _detail(r["detail"])} for r in rows]
    return render(request, "audit.html", {"values": values, "rows": entries, "next_url": next_url})


def _detail(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    return str(value)

