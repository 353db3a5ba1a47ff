"""The console's pages (spec/operations.md "Support console"). Each handler checks who asks (``require``),
turns the form or query into a service call, and renders the answer; the services audit every call."""
from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.console.common import (
    LOGIN_COOKIE,
    NOTICES,
    PASSWORD_MAX,
    USERNAME_MAX,
    _banks,
    _safe_next,
    _services,
)
from gateway.console.format import local_time
from gateway.console.support_pages import note, queue, reprint, resolve_item, resolve_tombstone, search, story
from gateway.console.tax_object_pages import find, history_pdf, issue_skl, skl_json, skl_pdf, tax_object
from gateway.console.treasury_pages import audit_log, close, close_confirm, report_csv, report_pdf, settlement, upload
from gateway.console.web import (
    CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    Refused,
    actor,
    form,
    redirect,
    render,
    require,
    text,
)
from gateway.staff.accounts import SigninLimits, audit, login, logout, record_signin_failure, signin_refusal


def routes() -> list[web.RouteDef]:
    return [
        web.get("/masuk", sign_in_form), web.post("/masuk", sign_in), web.post("/keluar", sign_out),
        web.get("/", home),
        web.get("/transaksi", search), web.get("/transaksi/{id}", story), web.post("/transaksi/{id}/catatan", note),
        web.post("/struk/{ntpd}", reprint),
        web.get("/objek", find),
        web.get("/objek/{nop}", tax_object),
        web.post("/objek/{nop}/riwayat", history_pdf),
        web.post("/objek/{nop}/skl", issue_skl),
        web.post("/skl/{number}/pdf", skl_pdf),
        web.post("/skl/{number}/json", skl_json),
        web.get("/antrian", queue), web.post("/antrian/item/{id}", resolve_item),
        web.post("/antrian/tombstone/{id}", resolve_tombstone),
        web.get("/setelmen", settlement), web.get("/setelmen/{date}/tutup", close_confirm),
        web.post("/setelmen/{date}/tutup", close),
        web.get("/setelmen/{date}/laporan.csv", report_csv), web.get("/setelmen/{date}/laporan.pdf", report_pdf),
        web.post("/setelmen/{date}/reconciliations", upload),
        web.get("/audit", audit_log),
    ]




def _signin_page(request: web.Request, *, status: int = 200, error: str | None = None,
                 username: str = "", lanjut: str = "") -> web.Response:
    token = secrets.token_urlsafe(32)
    notice = None
    if request.query.get("habis"):
        notice = "Sesi Anda telah berakhir. Silakan masuk kembali."
    elif request.query.get("pesan") == "keluar":
        notice = NOTICES["keluar"]
    response = render(request, "signin.html", {"login_token": token, "error": error, "notice": notice,
                                               "username": username, "lanjut": lanjut or request.query.get("lanjut", "")},
                      status=status)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure,
                        path=PREFIX + "/")
    return response


async def sign_in_form(request: web.Request) -> web.Response:
    return _signin_page(request)


async def sign_in(request: web.Request) -> web.Response:
    s = _services(request)
    fields = await form(request)
    given, expected = fields.get("login_token"), request.cookies.get(LOGIN_COOKIE, "")
    if not isinstance(given, str) or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(403, "Formulir masuk ini tidak membawa token keamanan yang benar. Muat ulang halaman masuk.")
    username = text(fields, "username", USERNAME_MAX)
    password = fields.get("password", "")
    if not username or not isinstance(password, str) or not password or len(password) > PASSWORD_MAX:
        return _signin_page(request, status=401, error="Nama pengguna atau kata sandi salah.", username=username)
    lanjut = fields.get("lanjut", "") if isinstance(fields.get("lanjut"), str) else ""
    staff = s.config.staff
    limits = SigninLimits(staff.signin_failures_per_user, staff.signin_failures_per_address,
                          timedelta(minutes=staff.signin_window_minutes))
    source = request.remote or ""
    # As the staff API: the limits first (a refused attempt runs no scrypt, even with the right password).
    refusal = await signin_refusal(s.pool, username, source, limits)
    if refusal is not None:
        await audit(s.pool, username[:128], "session.login_refused", username[:128],
                    {"reason": "too many failed sign-ins", "scope": refusal.scope,
                     "retry_after_s": refusal.retry_after_s, "channel": "console"}, source or None)
        # Authentication never uses the [testing] clock offset: the real clock.
        until = local_time(datetime.now(UTC) + timedelta(seconds=refusal.retry_after_s), s.config.region.tz)
        minutes = max(1, -(-refusal.retry_after_s // 60))
        response = _signin_page(
            request, status=429, username=username, lanjut=lanjut,
            error=f"Terlalu banyak percobaan masuk yang gagal. Coba lagi setelah {until} (sekitar {minutes} menit lagi).")
        response.headers["Retry-After"] = str(refusal.retry_after_s)
        return response
    session = await login(s.pool, username, password, ttl=timedelta(minutes=staff.session_idle_minutes))
    if session is None:
        await record_signin_failure(s.pool, username, source)
        await audit(s.pool, username[:128], "session.login_failed", username[:128],
                    {"reason": "bad credentials", "channel": "console"}, source or None)
        return _signin_page(request, status=401, error="Nama pengguna atau kata sandi salah.", username=username,
                            lanjut=lanjut)
    await audit(s.pool, session.user.username, "session.login", session.user.username,
                {"via": "session", "expires_at": session.expires_at.isoformat(), "channel": "console"}, source or None)
    response = redirect(_safe_next(lanjut))
    # The staff API's session cookie (one session for both), and the session's CSRF token for the forms.
    response.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="Strict", secure=request.secure,
                        path="/")
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=True, samesite="Strict", secure=request.secure,
                        path=PREFIX + "/")
    response.del_cookie(LOGIN_COOKIE, path=PREFIX + "/")
    return response


async def sign_out(request: web.Request) -> web.Response:
    user = await require(request)
    s = _services(request)
    await logout(s.pool, request.cookies[SESSION_COOKIE])
    await audit(s.pool, user.username, "session.logout", user.username, {"via": "session", "channel": "console"},
                request.remote or None)
    response = redirect(PREFIX + "/masuk?pesan=keluar")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path=PREFIX + "/")
    return response


# -- Beranda -------------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    """The dashboard (DashboardService.overview); it refreshes by its own link, JavaScript or not."""
    user = await require(request)
    board = await _services(request).dashboard.overview(actor(request, user))
    return render(request, "home.html", {"board": board, "banks": dict(_banks(request))})
