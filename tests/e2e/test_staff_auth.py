"""Staff authentication against a running ``gateway serve``: sessions, CSRF, bearer tokens, revocation,
roles and the audit log (spec/http-api.md "Staff routes"). Plain aiohttp: the OpenAPI conformance check
is for the banks' clients."""
from __future__ import annotations

import asyncio
import signal
import time
from http.cookies import SimpleCookie

import aiohttp
import pytest

from gateway.banksim.http_client import HttpBankClient
from helpers.staff import PASSWORD, add_user, call, sign_in, staff_cli, token_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def http():
    # No cookie jar: the tests send the session cookie themselves, to see exactly what is sent.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def audit_rows(db):
    return [(r["actor"], r["action"], r["target"]) for r in
            await db.fetch("SELECT actor, action, target FROM audit_log ORDER BY id")]


async def test_session_cookie_flags_csrf_and_sign_out(gateway, http, db):
    add_user(gateway, "ani", "support")
    status, headers, body = await call(http, gateway, "POST", "/v1/staff/session",
                                       json={"username": "ani", "password": PASSWORD})
    assert status == 200 and set(body) == {"csrf_token"}
    raw = headers["Set-Cookie"]
    cookie = SimpleCookie(raw)["gw_session"]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; Secure over TLS
    assert "HttpOnly" in raw and "SameSite=Strict" in raw
    assert cookie.value != body["csrf_token"] and len(cookie.value) >= 43
    jar = {"Cookie": f"gw_session={cookie.value}"}

    status, _, me = await call(http, gateway, "GET", "/v1/staff/me", headers=jar)
    assert (status, me) == (200, {"username": "ani", "role": "support"})

    # An unsafe request of the session without its CSRF token, or with another one, is refused.
    for extra in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": cookie.value}):
        status, headers, problem = await call(http, gateway, "DELETE", "/v1/staff/session", headers={**jar, **extra})
        assert status == 403, problem
        assert headers["Content-Type"].startswith("application/problem+json")
    assert (await call(http, gateway, "GET", "/v1/staff/me", headers=jar))[0] == 200  # still signed in

    status, headers, _ = await call(http, gateway, "DELETE", "/v1/staff/session",
                                    headers={**jar, "X-CSRF-Token": body["csrf_token"]})
    assert status == 204
    assert "gw_session=" in headers.get("Set-Cookie", "")  # cleared
    status, headers, problem = await call(http, gateway, "GET", "/v1/staff/me", headers=jar)
    assert status == 401 and problem["status"] == 401

    rows = await audit_rows(db)
    assert rows[0] == ("cli", "staff.add", "ani")
    assert rows[1:] == [("ani", "session.login", "ani"), ("ani", "staff.me", "ani"),
                        *[("ani", "denied", "DELETE /v1/staff/session")] * 3, ("ani", "staff.me", "ani"),
                        ("ani", "session.logout", "ani")]
    source = await db.fetchval("SELECT source FROM audit_log WHERE action = 'session.login'")
    assert source == "127.0.0.1"


async def test_wrong_credentials_are_401_and_audited_without_the_password(gateway, http, db):
    add_user(gateway, "ani", "admin")
    for user, password in (("ani", PASSWORD + "!"), ("nobody", PASSWORD)):
        status, headers, problem = await call(http, gateway, "POST", "/v1/staff/session",
                                              json={"username": user, "password": password})
        assert status == 401 and "Set-Cookie" not in headers, problem
    for bad in ({"username": "ani"}, ["ani", PASSWORD]):
        assert (await call(http, gateway, "POST", "/v1/staff/session", json=bad))[0] == 400
    assert (await call(http, gateway, "POST", "/v1/staff/session", data=b"{not json"))[0] == 400
    failed = await db.fetch("SELECT actor, target, detail::text AS detail FROM audit_log"
                            " WHERE action = 'session.login_failed' ORDER BY id")
    assert [(r["actor"], r["target"]) for r in failed] == [("ani", "ani"), ("nobody", "nobody")]
    assert all(PASSWORD not in r["detail"] for r in failed)
    everything = " ".join(str(tuple(r)) for r in await db.fetch("SELECT * FROM audit_log"))
    assert PASSWORD not in everything


async def test_bearer_token_roles_and_revoke(gateway, http, db):
    add_user(gateway, "budi", "treasury")
    token = token_for(gateway, "budi")
    bearer = {"Authorization": f"Bearer {token}"}
    status, _, me = await call(http, gateway, "GET", "/v1/staff/me", headers=bearer)
    assert (status, me) == (200, {"username": "budi", "role": "treasury"})
    # A bearer token needs no CSRF token; there is no session to end with one.
    assert (await call(http, gateway, "DELETE", "/v1/staff/session", headers=bearer))[0] == 400

    cookie, csrf = await sign_in(http, gateway, "budi")
    jar = {"Cookie": f"gw_session={cookie.value}"}
    assert (await call(http, gateway, "GET", "/v1/staff/me", headers=jar))[0] == 200

    run = staff_cli(gateway, "revoke", "budi")
    assert run.returncode == 0, run.stderr
    for headers in (bearer, jar):
        status, answer_headers, problem = await call(http, gateway, "GET", "/v1/staff/me", headers=headers)
        assert status == 401, problem
        assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert (await call(http, gateway, "DELETE", "/v1/staff/session",
                       headers={**jar, "X-CSRF-Token": csrf}))[0] == 401
    for wrong in ("Bearer ", "Bearer nonsense", f"Basic {token}", token):
        assert (await call(http, gateway, "GET", "/v1/staff/me", headers={"Authorization": wrong}))[0] == 401

    # A new token after revocation works.
    fresh = token_for(gateway, "budi")
    assert (await call(http, gateway, "GET", "/v1/staff/me", headers={"Authorization": f"Bearer {fresh}"}))[0] == 200

    rows = await audit_rows(db)
    assert [r for r in rows if r[0] == "cli"] == [("cli", "staff.add", "budi"), ("cli", "staff.token", "budi"),
                                                  ("cli", "staff.revoke", "budi"), ("cli", "staff.token", "budi")]
    assert [r for r in rows if r[0] == "budi"] == [("budi", "staff.me", "budi"), ("budi", "session.login", "budi"),
                                                   ("budi", "staff.me", "budi"), ("budi", "staff.me", "budi")]
    detail = await db.fetchval("SELECT detail::text FROM audit_log WHERE action = 'staff.revoke'")
    assert '"tokens": 1' in detail and '"sessions": 1' in detail


async def test_a_bank_signature_is_no_staff_credential(gateway, http, db):
    add_user(gateway, "ani", "admin")
    bank = HttpBankClient(gateway.http_url, "110", "secret-110")
    try:
        status, headers, problem = await bank.call("GET", "/v1/staff/me")
        assert status == 401, problem
        assert headers["Content-Type"].startswith("application/problem+json")
        status, _, problem = await bank.call("DELETE", "/v1/staff/session")
        assert status == 401, problem
    finally:
        await bank.close()
    assert (await call(http, gateway, "GET", "/v1/staff/me"))[0] == 401


def test_cli_refuses_short_passwords_and_prints_the_token_alone(gateway):
    short = staff_cli(gateway, "add", "ani", "--role", "admin", "--password-stdin", stdin="too-short\n")
    assert short.returncode == 2 and "12 characters" in short.stderr
    add_user(gateway, "ani", "admin")
    run = staff_cli(gateway, "token", "ani")
    assert run.returncode == 0 and run.stdout.count("\n") == 1 and " " not in run.stdout.strip()
    assert staff_cli(gateway, "revoke", "nobody").returncode == 1


async def test_configuration_reload_is_audited(gateway, db):
    gateway.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'config.reload'"):
        assert gateway.proc.poll() is None, gateway.log()[-3000:]
        assert time.monotonic() < deadline, "no audit row for the reload:\n" + gateway.log()[-3000:]
        await asyncio.sleep(0.05)
    row = await db.fetchrow("SELECT actor, target, detail::text AS detail FROM audit_log"
                            " WHERE action = 'config.reload'")
    assert row["actor"] == "system" and row["target"] == str(gateway.config_path)
    assert '"110"' in row["detail"]
