"""Staff accounts of a running gateway (``gateway staff`` on its configuration) and plain staff API calls."""
from __future__ import annotations

import os
import subprocess
import sys
from http.cookies import SimpleCookie

PASSWORD = "correct horse battery"


def staff_cli(gw, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "staff", *args, "--config", str(gw.config_path)],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GATEWAY_DATABASE_URL": gw.db_url})


def add_user(gw, user: str, role: str) -> None:
    run = staff_cli(gw, "add", user, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    assert run.returncode == 0, run.stderr


def token_for(gw, user: str) -> str:
    run = staff_cli(gw, "token", user)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


async def call(http, gw, method: str, path: str, **kw):
    async with http.request(method, gw.http_url + path, **kw) as resp:
        body = await resp.json(content_type=None) if resp.content_length != 0 else None
        return resp.status, resp.headers, body


async def sign_in(http, gw, user: str, password: str = PASSWORD):
    status, headers, body = await call(http, gw, "POST", "/v1/staff/session",
                                       json={"username": user, "password": password})
    assert status == 200, body
    cookie = SimpleCookie(headers["Set-Cookie"])["gw_session"]
    return cookie, body["csrf_token"]
