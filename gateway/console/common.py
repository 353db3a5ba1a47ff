"""What the console's pages share: the services of the request, notices, ids, dates and bank filters."""
from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from gateway.console.web import (
    PREFIX,
    SERVICES,
    Refused,
)
from gateway.domain.business_day import business_date
from gateway.domain.errors import FormatError
from gateway.domain.text import is_clean
from gateway.settlement.invariants import REPORT_KEYS, report_table
from gateway.staff.support import search_date

LOGIN_COOKIE = "gw_console_login"  # the sign-in form's own CSRF token (double submit: no session yet)
USERNAME_MAX = 128
PASSWORD_MAX = 1024
ID_MAX_DIGITS = 18
# Messages after a form's redirect, by key (never text from the query string).
NOTICES = {
    "catatan": "Catatan ditambahkan.",
    "selesai": "Item diselesaikan dan keluar dari antrian.",
    "ditutup": "Tanggal bisnis ditutup.",
    "keluar": "Anda telah keluar.",
}



def _services(request: web.Request) -> Any:
    return request.config_dict[SERVICES]


def _notice(request: web.Request) -> str | None:
    return NOTICES.get(request.query.get("pesan", ""))


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > ID_MAX_DIGITS:
        raise Refused(404)
    return int(raw)


def _day(raw: str) -> date:
    try:
        return search_date(raw, "tanggal")
    except FormatError:
        raise Refused(400, "Tanggal harus berbentuk TTTT-BB-HH, misalnya 2026-11-23.") from None


def _today(request: web.Request) -> date:
    """The current business date, by the gateway's clock (the [testing] offset included)."""
    s = _services(request)
    return business_date(s.engine.ctx.clock.now(), s.config.region.tz, s.config.region.cutoff_time)


def _bank_filter(request: web.Request, raw: str) -> str | None:
    if not raw:
        return None
    if _services(request).config.bank(raw) is None:
        raise Refused(400, "Kode bank tidak dikenal.")
    return raw


def _banks(request: web.Request) -> list[tuple[str, str]]:
    return [(b.code, b.name) for b in _services(request).config.banks]


def _safe_next(raw: str | None) -> str:
    """Where to go after signing in: a console page of this site only."""
    if raw and raw.startswith(PREFIX + "/") and not raw.startswith("//") and "\\" not in raw and is_clean(raw, 512):
        return raw
    return PREFIX + "/"




def _totals(request: web.Request, found) -> dict[str, Any]:
    """The settlement table's rows (bank, tax) and total, as the report orders them."""
    names = dict(_banks(request))
    lines, sums = report_table(found.totals)
    rows = [{"bank": t.bank, "bank_name": names.get(t.bank, ""), "tax": t.tax, **dict(zip(REPORT_KEYS, values))}
            for t, values in lines]
    return {"rows": rows, "total": dict(zip(REPORT_KEYS, sums))}
