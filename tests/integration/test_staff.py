"""Staff accounts against real PostgreSQL: users, tokens, sessions, revocation and the audit log."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from gateway.staff import accounts
from gateway.staff.accounts import CsrfError, StaffError
from gateway.staff.passwords import PasswordError

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


async def test_add_user_stores_only_a_scrypt_hash(db):
    user = await accounts.add_user(db, "siti", "support", PASSWORD)
    assert (user.username, user.role) == ("siti", "support")
    row = await db.fetchrow("SELECT * FROM staff_users WHERE username = 'siti'")
    assert row["password_hash"].startswith("scrypt$32768$8$1$")
    assert PASSWORD not in row["password_hash"]
    assert row["created_at"] is not None and row["disabled_at"] is None


async def test_add_user_refusals(db):
    await accounts.add_user(db, "siti", "support", PASSWORD)
    with pytest.raises(StaffError, match="already exists"):
        await accounts.add_user(db, "siti", "admin", PASSWORD)
    with pytest.raises(StaffError, match="role"):
        await accounts.add_user(db, "budi", "root", PASSWORD)
    with pytest.raises(StaffError):
        await accounts.add_user(db, "bad name", "admin", PASSWORD)
    with pytest.raises(PasswordError):
        await accounts.add_user(db, "budi", "admin", "short")
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("INSERT INTO staff_users (username, role, password_hash) VALUES ('x', 'root', 'scrypt$')")


async def test_tokens_are_stored_hashed_and_end_on_revoke(db):
    await accounts.add_user(db, "budi", "treasury", PASSWORD)
    token = await accounts.issue_token(db, "budi")
    second = await accounts.issue_token(db, "budi")
    assert token != second and len(token) >= 43
    stored = await db.fetch("SELECT token_hash FROM staff_tokens")
    assert all(token.encode() not in bytes(r["token_hash"]) for r in stored)
    assert {len(r["token_hash"]) for r in stored} == {32}
    user = await accounts.authenticate_bearer(db, token)
    assert (user.username, user.role, user.via) == ("budi", "treasury", "bearer")
    assert await accounts.authenticate_bearer(db, "not-a-token") is None
    session = await accounts.login(db, "budi", PASSWORD)
    assert await accounts.revoke_user(db, "budi") == (2, 1)
    assert await accounts.authenticate_bearer(db, token) is None
    assert await accounts.authenticate_bearer(db, second) is None
    assert await accounts.authenticate_session(db, session.session_id, "GET", None) is None
    assert await accounts.revoke_user(db, "budi") == (0, 0)
    # A new token after revocation works again.
    assert await accounts.authenticate_bearer(db, await accounts.issue_token(db, "budi")) is not None
    with pytest.raises(StaffError, match="no such"):
        await accounts.issue_token(db, "nobody")
    with pytest.raises(StaffError, match="no such"):
        await accounts.revoke_user(db, "nobody")


async def test_login_session_and_csrf(db):
    await accounts.add_user(db, "ani", "admin", PASSWORD)
    assert await accounts.login(db, "ani", PASSWORD + "x") is None
    assert await accounts.login(db, "nobody", PASSWORD) is None
    session = await accounts.login(db, "ani", PASSWORD)
    assert session.user.username == "ani" and session.session_id != session.csrf_token
    row = await db.fetchrow("SELECT expires_at - created_at AS ttl, session_hash, csrf_hash FROM staff_sessions")
    assert row["ttl"] == timedelta(hours=12)
    assert bytes(row["session_hash"]) == accounts.secret_hash(session.session_id)
    assert bytes(row["csrf_hash"]) == accounts.secret_hash(session.csrf_token)
    sid = session.session_id
    assert (await accounts.authenticate_session(db, sid, "GET", None)).username == "ani"
    assert (await accounts.authenticate_session(db, sid, "DELETE", session.csrf_token)).role == "admin"
    for method, csrf in (("DELETE", None), ("POST", ""), ("PUT", "wrong"), ("PATCH", sid)):
        with pytest.raises(CsrfError):
            await accounts.authenticate_session(db, sid, method, csrf)
    assert await accounts.authenticate_session(db, "unknown", "GET", None) is None
    assert await accounts.logout(db, sid)
    assert not await accounts.logout(db, sid)
    assert await accounts.authenticate_session(db, sid, "GET", None) is None


async def test_sessions_expire(db):
    await accounts.add_user(db, "ani", "admin", PASSWORD)
    session = await accounts.login(db, "ani", PASSWORD)
    assert await accounts.authenticate_session(db, session.session_id, "GET", None) is not None
    await db.execute("UPDATE staff_sessions SET created_at = now() - interval '13 hours',"
                     " expires_at = now() - interval '1 hour'")
    assert await accounts.authenticate_session(db, session.session_id, "GET", None) is None


async def test_disabled_users_cannot_authenticate(db):
    await accounts.add_user(db, "ani", "admin", PASSWORD)
    token = await accounts.issue_token(db, "ani")
    session = await accounts.login(db, "ani", PASSWORD)
    await db.execute("UPDATE staff_users SET disabled_at = now()")
    assert await accounts.authenticate_bearer(db, token) is None
    assert await accounts.authenticate_session(db, session.session_id, "GET", None) is None
    assert await accounts.login(db, "ani", PASSWORD) is None


async def test_audit_log_is_append_only(db, pool):
    await accounts.audit(db, "ani", "staff.me", "ani", {"via": "bearer"}, "127.0.0.1")
    await accounts.audit(pool, "system", "config.reload", None, None, None)
    await accounts.audit_soon(pool, "system", "config.reload", "gw.toml", {"banks": ["110"]})
    rows = await db.fetch("SELECT actor, action, target, detail, source, at FROM audit_log ORDER BY id")
    assert [(r["actor"], r["action"], r["target"], r["source"]) for r in rows] == [
        ("ani", "staff.me", "ani", "127.0.0.1"), ("system", "config.reload", None, None),
        ("system", "config.reload", "gw.toml", None)]
    assert rows[0]["detail"] == '{"via": "bearer"}' and rows[1]["detail"] == "{}"
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 3


def _cli(db_url, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "gateway", "staff", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GATEWAY_DATABASE_URL": db_url})


async def test_cli_add_token_revoke(db_url, db):
    added = _cli(db_url, "add", "ani", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout == ""
    short = _cli(db_url, "add", "budi", "--role", "support", "--password-stdin", stdin="elevenchars\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    again = _cli(db_url, "add", "ani", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad_role = _cli(db_url, "add", "budi", "--role", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert bad_role.returncode == 2
    issued = _cli(db_url, "token", "ani")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and len(token) >= 43
    assert (await accounts.authenticate_bearer(db, token)).username == "ani"
    assert _cli(db_url, "token", "nobody").returncode == 1
    revoked = _cli(db_url, "revoke", "ani")
    assert revoked.returncode == 0, revoked.stderr
    assert await accounts.authenticate_bearer(db, token) is None
    rows = await db.fetch("SELECT actor, action, target, detail FROM audit_log ORDER BY id")
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("cli", "staff.add", "ani"), ("cli", "staff.token", "ani"), ("cli", "staff.revoke", "ani")]
    assert all(PASSWORD not in r["detail"] and token not in r["detail"] for r in rows)
