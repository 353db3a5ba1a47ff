"""The console's plumbing without a database or a browser: security headers, HTML error pages, the sign-in
redirect, the CSRF-token form, and the formatting of values (gateway/console/)."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.console import mount
from gateway.console.format import elapsed, local_time, nop_of, rupiah
from gateway.console.web import SECURITY_HEADERS, SESSION_COOKIE
from gateway.http.staff_auth import SESSION_COOKIE as API_SESSION_COOKIE

TZ = ZoneInfo("Asia/Jakarta")


def _services():
    config = SimpleNamespace(region=SimpleNamespace(tz=TZ, timezone="Asia/Jakarta"), banks=(),
                             bank=lambda code: None)
    return SimpleNamespace(config=config)


@pytest.fixture
async def client():
    app = web.Application()

    async def problem(request: web.Request) -> web.Response:  # what the HTTP app's middleware answers
        return web.Response(status=413, body=b'{"status":413}', content_type="application/problem+json")

    app.router.add_get("/v1/elsewhere", problem)
    mount(app, _services())
    # A failure the HTTP app turns into problem details for a console path (its edge, its body limit).
    app.middlewares.append(_problem_for("/console/terlalu-besar"))
    async with TestClient(TestServer(app)) as c:
        yield c


def _problem_for(path: str):
    @web.middleware
    async def middleware(request, handler):
        if request.path == path:
            return web.Response(status=413, body=b'{"status":413}', content_type="application/problem+json",
                                headers={"X-Request-Id": "abc"})
        return await handler(request)

    return middleware


def _headers(resp) -> dict[str, str]:
    return {name: resp.headers.get(name) for name in SECURITY_HEADERS}


async def test_sign_in_page_has_the_headers_a_login_token_and_no_script(client):
    resp = await client.get("/console/masuk")
    body = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert _headers(resp) == SECURITY_HEADERS
    assert SECURITY_HEADERS["Content-Security-Policy"].startswith("default-src 'self'; script-src 'none';")
    assert '<html lang="id">' in body and "<script" not in body
    token = resp.cookies["gw_console_login"]
    assert token["httponly"] and token["samesite"] == "Strict" and token["path"] == "/console/"
    assert not token["secure"]  # plain HTTP here; Secure when the request came over TLS
    assert f'name="login_token" value="{token.value}"' in body


async def test_without_a_session_pages_redirect_to_sign_in_with_the_headers(client):
    resp = await client.get("/console/antrian?bank=110", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/masuk?lanjut=%2Fconsole%2Fantrian%3Fbank%3D110"
    assert _headers(resp) == SECURITY_HEADERS


async def test_a_post_without_the_sign_in_token_is_refused_with_an_html_403(client):
    resp = await client.post("/console/masuk", data={"username": "budi", "password": "x" * 12})
    body = await resp.text()
    assert resp.status == 403 and resp.content_type == "text/html"
    assert "<h1>Akses ditolak</h1>" in body
    assert _headers(resp) == SECURITY_HEADERS


async def test_errors_under_console_are_html_pages_elsewhere_untouched(client):
    resp = await client.get("/console/tidak-ada")
    assert resp.status == 404 and resp.content_type == "text/html"
    assert "<h1>Halaman tidak ditemukan</h1>" in await resp.text()
    assert _headers(resp) == SECURITY_HEADERS
    resp = await client.get("/console/terlalu-besar")
    assert resp.status == 413 and resp.content_type == "text/html"
    assert resp.headers["X-Request-Id"] == "abc"
    assert "<h1>Berkas terlalu besar</h1>" in await resp.text()
    resp = await client.get("/v1/elsewhere")
    assert resp.content_type == "application/problem+json" and "Content-Security-Policy" not in resp.headers
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "/console/"


async def test_the_style_sheet_is_served_with_the_headers(client):
    resp = await client.get("/console/static/console.css")
    assert resp.status == 200 and resp.content_type == "text/css"
    assert _headers(resp) == SECURITY_HEADERS


async def test_autoescaping_is_on(client):
    resp = await client.get("/console/masuk?lanjut=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    body = await resp.text()
    assert "<script>" not in body and "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_the_console_shares_the_staff_api_session_cookie():
    assert SESSION_COOKIE == API_SESSION_COOKIE


def test_values_are_written_the_indonesian_way():
    assert rupiah(154500) == "Rp 154.500" and rupiah(0) == "Rp 0" and rupiah(None) == ""
    assert rupiah(-1_000_000) == "-Rp 1.000.000"
    assert nop_of("3275010001001000102026", "PBB") == "32.75.010.001.001-0001.0"
    assert nop_of("20261100012356", "BPHTB") == "20261100012356"
    assert local_time(dt.datetime(2026, 11, 23, 2, 30, tzinfo=dt.UTC), TZ) == "2026-11-23 09:30:00 WIB"
    assert [elapsed(s) for s in (0.25, 62, 7500, 90000)] == ["+0,25 dtk", "+1 mnt 2 dtk", "+2 jam 5 mnt",
                                                             "+1 hari 1 jam"]
