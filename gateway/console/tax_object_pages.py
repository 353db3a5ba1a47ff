"""The "Objek pajak" page (spec/operations.md "Support console"): one NOP's tax years with what is due now and
its payments with their NTPD; the payment-history print-out and the Surat Keterangan Lunas (spec/domain.md)
as PDFs. Every read, print and issue is a TaxObjectService call, which audits it; the handlers only translate.

Roles: support, treasury and admin may view the page and print (the history, an issued SKL and its signed
JSON). Issuing an SKL is the support desk's service to a taxpayer: support and admin only (treasury reads).
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.console.common import _services
from gateway.console.web import PREFIX, Refused, actor, form, redirect, render, require
from gateway.domain.errors import FormatError
from gateway.domain.nop import display_nop, parse_nop
from gateway.domain.proof import parse_skl_number

# Who may issue a Surat Keterangan Lunas (admin always may: see web.require).
SKL_ISSUERS = frozenset({"support", "admin"})
YEAR_STATUS = {"unpaid": "Belum lunas", "paid": "Lunas", "cancelled": "Dibatalkan"}
NOP_INPUT_MAX = 40


def _nop(raw: str) -> str:
    """The NOP's 18 digits from the path or the search form (display form or digits), else Refused 400."""
    if len(raw) > NOP_INPUT_MAX:
        raise Refused(400, "NOP terlalu panjang.")
    try:
        return parse_nop(raw)
    except FormatError:
        raise Refused(400, "NOP harus 18 angka, misalnya 32.75.010.001.001-0001.0.") from None


def page_path(nop: str) -> str:
    return f"{PREFIX}/objek/{display_nop(nop)}"


def _skl_number(request: web.Request) -> str:
    raw = request.match_info["number"]
    try:
        parse_skl_number(raw)
    except FormatError:
        raise Refused(404, "Surat Keterangan Lunas ini tidak ditemukan.") from None
    return raw


async def find(request: web.Request) -> web.Response:
    """The search form (Beranda): to the NOP's page."""
    await require(request)
    raw = request.query.get("nop", "").strip()
    if not raw:
        return render(request, "tax_object.html", {"account": None, "error": None, "value": ""})
    try:
        nop = _nop(raw)
    except Refused as exc:
        return render(request, "tax_object.html", {"account": None, "error": str(exc), "value": raw[:NOP_INPUT_MAX]},
                      status=400)
    return redirect(page_path(nop))


async def tax_object(request: web.Request) -> web.Response:
    user = await require(request)
    nop = _nop(request.match_info["nop"])
    return await _page(request, user, nop, issued=request.query.get("terbit", ""))


async def _page(request: web.Request, user, nop: str, *, issued: str = "", error: str | None = None,
                status: int = 200) -> web.Response:
    account = await _services(request).tax_objects.account(actor(request, user), nop)
    if account is None:
        raise Refused(404, f"Tidak ada tagihan PBB-P2 untuk NOP {display_nop(nop)} di wilayah ini.")
    numbers = {c.number for c in account.certificates}
    years = [{"line": y, "status": YEAR_STATUS.get(y.status, y.status),
              "certificates": [c for c in account.certificates if c.tax_year == y.tax_year],
              "may_issue": y.status == "paid" and y.ntpd is not None} for y in account.years]
    return render(request, "tax_object.html", {
        "account": account, "years": years, "path_base": page_path(nop), "error": error, "value": "",
        "may_issue": user.role in SKL_ISSUERS, "issued": issued if issued in numbers else None}, status=status)


async def history_pdf(request: web.Request) -> web.Response:
    user = await require(request)
    nop = _nop(request.match_info["nop"])
    body = await _services(request).tax_objects.payment_history_pdf(actor(request, user), nop)
    if body is None:
        raise Refused(404, f"Tidak ada tagihan PBB-P2 untuk NOP {display_nop(nop)} di wilayah ini.")
    return _download(body, "application/pdf", f"riwayat-pembayaran-{nop}.pdf")


async def issue_skl(request: web.Request) -> web.Response:
    user = await require(request, SKL_ISSUERS)
    nop = _nop(request.match_info["nop"])
    year = (await form(request)).get("tahun", "")
    if not isinstance(year, str):
        raise Refused(400, "Tahun pajak harus 4 angka.")
    try:
        result = await _services(request).tax_objects.issue_skl(actor(request, user), nop, year)
    except FormatError:
        raise Refused(400, "Tahun pajak harus 4 angka.") from None
    if result.outcome == "issued":
        assert result.skl is not None  # issued: the certificate is set
        return redirect(f"{page_path(nop)}?terbit={quote(result.skl.number)}#skl")
    if result.outcome == "not_found":
        raise Refused(404, result.reason)
    return await _page(request, user, nop, status=409,
                       error=f"Surat Keterangan Lunas tidak diterbitkan: {result.reason}")


async def skl_pdf(request: web.Request) -> web.Response:
    user = await require(request)
    number = _skl_number(request)
    body = await _services(request).tax_objects.skl_pdf(actor(request, user), number)
    if body is None:
        raise Refused(404, "Surat Keterangan Lunas ini tidak ditemukan.")
    return _download(body, "application/pdf", f"{number}.pdf")


async def skl_json(request: web.Request) -> web.Response:
    """The signed certificate, ``{document, signature, kid, validation_code}``: ``gateway proof verify`` checks it."""
    user = await require(request)
    number = _skl_number(request)
    saved: dict[str, Any] | None = await _services(request).tax_objects.skl_saved(actor(request, user), number)
    if saved is None:
        raise Refused(404, "Surat Keterangan Lunas ini tidak ditemukan.")
    body = json.dumps(saved, ensure_ascii=False, indent=2).encode()
    return _download(body, "application/json", f"{number}.json")


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(body=body, content_type=content_type,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
