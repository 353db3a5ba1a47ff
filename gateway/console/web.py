"""The console's aiohttp plumbing: the sub-application, its templates, the security headers, HTML error
pages, form parsing, sessions and roles. The pages themselves are in ``pages.py``."""
from __future__ import annotations

import email.parser
import email.policy
import pathlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.console.format import filters
from gateway.domain.errors import FormatError
from gateway.domain.text import check_text
from gateway.staff.accounts import CsrfError, StaffUser, audit, authenticate_session
from gateway.staff.support import Actor

PREFIX = "/console"
# The staff API's session cookie (gateway/http/staff_auth.py SESSION_COOKIE): one session for both.
SESSION_COOKIE = "gw_session"
# The session's CSRF token, kept by the browser for the console's forms (HttpOnly: no script reads it; a
# forged form from another site cannot know it, and every POST must carry it in a hidden field).
CSRF_COOKIE = "gw_console_csrf"
CSRF_FIELD = "csrf_token"
TOKEN_MAX = 256
ALL_ROLES = frozenset({"support", "treasury", "admin"})
TREASURY = frozenset({"treasury", "admin"})
ADMIN = frozenset({"admin"})
# The HTTP channel's services, untyped here: the console does not import gateway.http (see __init__.py).
SERVICES: web.AppKey[Any] = web.AppKey("console_services", object)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ERROR_TEXT = {
    400: ("Permintaan tidak valid", "Permintaan ini tidak dapat dibaca. Periksa isian lalu coba lagi."),
    403: ("Akses ditolak", "Anda tidak berhak melakukan tindakan ini."),
    404: ("Halaman tidak ditemukan", "Halaman atau data yang Anda cari tidak ada."),
    405: ("Metode tidak diizinkan", "Halaman ini tidak menerima permintaan seperti itu."),
    409: ("Konflik", "Tindakan ini tidak dapat dilakukan pada keadaan data saat ini."),
    413: ("Berkas terlalu besar", "Isi permintaan melebihi batas ukuran."),
    429: ("Terlalu banyak percobaan", "Coba lagi nanti."),
    500: ("Kesalahan sistem", "Terjadi kesalahan pada sistem. Coba lagi; bila berulang, hubungi administrator."),
    503: ("Layanan tidak tersedia", "Basis data sedang tidak dapat dijangkau. Coba lagi sebentar lagi."),
}


class Refused(Exception):
    """A console request answered with an HTML error page (403, 404, 400, 409)."""

    def __init__(self, status: int, message: str | None = None):
        super().__init__(message or ERROR_TEXT.get(status, ("", ""))[1])
        self.status = status
        self.message = message


class SignInAgain(Exception):
    """No (live) session: the browser goes to the sign-in page, and back here afterwards."""

    def __init__(self, expired: bool):
        super().__init__("sign in")
        self.expired = expired


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def mount(app: web.Application, services: Any) -> None:
    """Serve the console under /console/ on ``app`` (the HTTP channel's application)."""
    from gateway.console import pages

    sub = web.Application(middlewares=[_pages_middleware])
    sub[SERVICES] = services
    env = aiohttp_jinja2.setup(sub, loader=jinja2.PackageLoader("gateway.console", "templates"), autoescape=True,
                               filters=filters(services.config.region.tz), undefined=jinja2.StrictUndefined)
    sub.router.add_static("/static/", pathlib.Path(__file__).parent / "static", name="static")
    sub.add_routes(pages.routes())
    app.add_subapp(PREFIX, sub)
    # Outermost: whatever answered a console path (the HTTP app's edge and error handling included) goes
    # out as HTML with the console's headers, never as problem details.
    app.middlewares.insert(0, _outer_middleware(env))


def _outer_middleware(env: jinja2.Environment):
    @web.middleware
    async def console_edge(request: web.Request, handler) -> web.StreamResponse:
        if not is_console(request.path):
            return await handler(request)
        if request.path == PREFIX:
            response: web.StreamResponse = web.Response(status=308, headers={"Location": PREFIX + "/"})
        else:
            response = await handler(request)
            if response.content_type == "application/problem+json":
                response = _error_page(env, response.status, None, response)
        response.headers.update(SECURITY_HEADERS)
        return response

    return console_edge


def _error_page(env: jinja2.Environment, status: int, message: str | None,
                original: web.StreamResponse | None = None) -> web.Response:
    title, text = ERROR_TEXT.get(status, ("Kesalahan", "Permintaan tidak dapat diproses."))
    html = env.get_template("error.html").render(status=status, title=title, message=message or text,
                                                 user=None, csrf_token="", nav=None)
    response = web.Response(status=status, text=html, content_type="text/html")
    if original is not None:
        for name in ("X-Request-Id", "Retry-After", "Allow"):
            if name in original.headers:
                response.headers[name] = original.headers[name]
    return response


@web.middleware
async def _pages_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SignInAgain as exc:
        target = request.path_qs if request.method == "GET" else PREFIX + "/"
        query = "?habis=1&lanjut=" + quote(target, safe="") if exc.expired else "?lanjut=" + quote(target, safe="")
        response = web.Response(status=303, headers={"Location": PREFIX + "/masuk" + query})
        if exc.expired:
            response.del_cookie(CSRF_COOKIE, path=PREFIX + "/")
        return response
    except Refused as exc:
        return render(request, "error.html", {"status": exc.status,
                                              "title": ERROR_TEXT.get(exc.status, ("Kesalahan", ""))[0],
                                              "message": str(exc)}, status=exc.status)
    except web.HTTPNotFound:
        return render(request, "error.html", {"status": 404, "title": ERROR_TEXT[404][0],
                                              "message": ERROR_TEXT[404][1]}, status=404)


def render(request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200) -> web.Response:
    """A page: the template with the signed-in user, the CSRF token for its forms and the navigation."""
    user: StaffUser | None = request.get("console_user")
    base = {"user": user, "csrf_token": request.get("console_csrf", ""), "nav": nav(user),
            "path": request.path}
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def nav(user: StaffUser | None) -> list[tuple[str, str]] | None:
    if user is None:
        return None
    items = [("/console/", "Beranda"), ("/console/transaksi", "Cari transaksi"), ("/console/antrian", "Antrian kerja"),
             ("/console/setelmen", "Setelmen")]
    if user.role == "admin":
        items.append(("/console/audit", "Audit"))
    return items


def redirect(location: str) -> web.Response:
    """See other: the answer to every successful form (POST, redirect, GET)."""
    return web.Response(status=303, headers={"Location": location})


# -- forms ---------------------------------------------------------------------------------------------


async def form(request: web.Request) -> dict[str, Any]:
    """The POSTed form's fields (URL-encoded or multipart): text fields as str, files as (filename, bytes).

    The HTTP app has read and bounded the body already (``request["body"]``); multipart is parsed from those
    bytes, since the request's stream is spent."""
    if "console_form" in request:
        return request["console_form"]
    fields: dict[str, Any] = {}
    if request.content_type == "multipart/form-data":
        head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode("latin-1", "replace")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.get("body", b""))
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                # An RFC 2231 name comes as a (charset, language, value) tuple: no page asks for such a key.
                if not name or not isinstance(name, str) or name in fields:
                    continue
                data = part.get_payload(decode=True) or b""
                assert isinstance(data, bytes)  # decode=True: a leaf part's bytes, None for a nested multipart
                filename = part.get_filename()
                if filename is not None:
                    fields[name] = (filename, data)
                else:
                    fields[name] = data.decode("utf-8", "replace")
    else:
        posted = await request.post()
        for name in posted:
            value = posted.get(name)
            if isinstance(value, str) and name not in fields:
                fields[name] = value
    request["console_form"] = fields
    return fields


def text(fields: Mapping[str, Any], name: str, max_len: int, *, multiline: bool = False) -> str:
    """A form field's text by the gateway's text rules (domain/text.py), stripped (possibly empty: the caller
    says what an empty one means), or Refused 400 naming the field."""
    value = fields.get(name, "")
    if not isinstance(value, str):
        raise Refused(400, f"Isian {name} tidak valid.")
    try:
        return check_text(value, name, max_len, multiline=multiline, required=False).strip()
    except FormatError as exc:
        raise Refused(400, f"Isian tidak valid: {exc}") from None


# -- who is asking -------------------------------------------------------------------------------------


async def require(request: web.Request, roles: frozenset[str] = ALL_ROLES) -> StaffUser:
    """The signed-in staff user allowed one of ``roles`` (admin always is), else SignInAgain or Refused 403.

    The staff API's session check (accounts.authenticate_session, sliding idle expiry); a POST must carry the
    session's CSRF token in its form. A CSRF failure or a role refusal is audited, as in the API."""
    services = request.config_dict[SERVICES]
    session_id = request.cookies.get(SESSION_COOKIE, "")
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not session_id or len(session_id) > TOKEN_MAX or not csrf or len(csrf) > TOKEN_MAX:
        raise SignInAgain(expired=bool(session_id))
    given = None
    if request.method not in ("GET", "HEAD"):
        value = (await form(request)).get(CSRF_FIELD)
        given = value if isinstance(value, str) and len(value) <= TOKEN_MAX else None
    idle = timedelta(minutes=services.config.staff.session_idle_minutes)
    try:
        user = await authenticate_session(services.pool, session_id, request.method, given, idle=idle)
    except CsrfError as exc:
        await audit(services.pool, exc.username, "denied", f"{request.method} {request.path}",
                    {"reason": "csrf", "channel": "console"}, request.remote or None)
        raise Refused(403, "Formulir ini tidak membawa token keamanan (CSRF) yang benar. Muat ulang halaman "
                           "lalu coba lagi.") from None
    if user is None:
        raise SignInAgain(expired=True)
    request["console_user"], request["console_csrf"] = user, csrf
    if user.role != "admin" and user.role not in roles:
        await audit(services.pool, user.username, "denied", f"{request.method} {request.path}",
                    {"reason": "role", "role": user.role, "channel": "console"}, request.remote or None)
        raise Refused(403, "Peran Anda tidak berhak membuka halaman atau melakukan tindakan ini.")
    return user


def actor(request: web.Request, user: StaffUser) -> Actor:
    """Who acts, as the services record it: the user, their session, from where."""
    return Actor(user.username, user.via or "session", request.remote or None)
