"""Staff accounts over asyncpg: users, bearer tokens, browser sessions and the audit log.

Secrets never reach the database in clear: passwords as scrypt hashes (``passwords``), bearer tokens,
session ids and CSRF tokens (32 random bytes each) as SHA-256. Authentication is a lookup by hash.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from gateway.staff.passwords import check_policy, dummy_verify, hash_password, verify_password

log = structlog.get_logger("gateway.staff")

ROLES = ("support", "treasury", "admin")
SESSION_TTL = timedelta(hours=12)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

Executor = asyncpg.Connection | asyncpg.Pool


class StaffError(Exception):
    """A refused account operation (unknown user, duplicate name, bad role, weak password)."""


class CsrfError(Exception):
    """An unsafe request of a session without the session's CSRF token."""

    def __init__(self, username: str):
        super().__init__("missing or wrong X-CSRF-Token")
        self.username = username


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str
    via: str = ""  # "bearer" or "session" once authenticated


@dataclass(frozen=True)
class Session:
    user: StaffUser
    session_id: str
    csrf_token: str
    expires_at: datetime


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise StaffError("USER must be 1-64 characters of letters, digits and . _ @ -")


async def add_user(conn: Executor, username: str, role: str, password: str) -> StaffUser:
    _check_username(username)
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    check_policy(password)  # PasswordError (a ValueError) for the caller to map
    encoded = await asyncio.to_thread(hash_password, password)
    try:
        row = await conn.fetchrow("INSERT INTO staff_users (username, role, password_hash) VALUES ($1, $2, $3)"
                                  " RETURNING id", username, role, encoded)
    except asyncpg.UniqueViolationError:
        raise StaffError(f"staff user {username!r} already exists") from None
    return StaffUser(row["id"], username, role)


async def find_user(conn: Executor, username: str) -> StaffUser | None:
    row = await conn.fetchrow("SELECT id, username, role FROM staff_users WHERE username = $1"
                              " AND disabled_at IS NULL", username)
    return StaffUser(row["id"], row["username"], row["role"]) if row else None


async def _require_user(conn: Executor, username: str) -> StaffUser:
    user = await find_user(conn, username)
    if user is None:
        raise StaffError(f"no such staff user: {username!r}")
    return user


async def issue_token(conn: Executor, username: str) -> str:
    """A new bearer token for ``username``; only its hash is stored, so this is the one time it is seen."""
    user = await _require_user(conn, username)
    token = new_secret()
    await conn.execute("INSERT INTO staff_tokens (token_hash, user_id) VALUES ($1, $2)", secret_hash(token), user.id)
    return token


async def revoke_user(conn: Executor, username: str) -> tuple[int, int]:
    """End every token and session of ``username``; returns (tokens, sessions) ended."""
    user = await _require_user(conn, username)
    tokens = await conn.fetchval(
        "WITH t AS (UPDATE staff_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        " RETURNING 1) SELECT count(*) FROM t", user.id)
    sessions = await conn.fetchval(
        "WITH s AS (UPDATE staff_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        " RETURNING 1) SELECT count(*) FROM s", user.id)
    return tokens, sessions


async def login(conn: Executor, username: str, password: str, *, ttl: timedelta = SESSION_TTL) -> Session | None:
    """A new session when the password is right, else None (the same time spent for an unknown user)."""
    row = None
    if USERNAME.fullmatch(username or ""):
        row = await conn.fetchrow("SELECT id, username, role, password_hash FROM staff_users WHERE username = $1"
                                  " AND disabled_at IS NULL", username)
    if row is None:
        await asyncio.to_thread(dummy_verify, password)
        return None
    if not await asyncio.to_thread(verify_password, password, row["password_hash"]):
        return None
    session_id, csrf = new_secret(), new_secret()
    expires_at = await conn.fetchval(
        "INSERT INTO staff_sessions (session_hash, user_id, csrf_hash, expires_at) VALUES ($1, $2, $3, now() + $4::interval)"
        " RETURNING expires_at", secret_hash(session_id), row["id"], secret_hash(csrf), ttl)
    return Session(StaffUser(row["id"], row["username"], row["role"], "session"), session_id, csrf, expires_at)


async def logout(conn: Executor, session_id: str) -> bool:
    status = await conn.execute("UPDATE staff_sessions SET revoked_at = now() WHERE session_hash = $1"
                                " AND revoked_at IS NULL", secret_hash(session_id))
    return status.endswith(" 1")


async def authenticate_bearer(conn: Executor, token: str) -> StaffUser | None:
    row = await conn.fetchrow(
        "SELECT u.id, u.username, u.role FROM staff_tokens t JOIN staff_users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL", secret_hash(token))
    return StaffUser(row["id"], row["username"], row["role"], "bearer") if row else None


async def authenticate_session(conn: Executor, session_id: str, method: str,
                               csrf_token: str | None) -> StaffUser | None:
    """The session's user, or None for an unknown, expired or revoked session.

    Raises CsrfError for an unsafe method without the session's CSRF token."""
    row = await conn.fetchrow(
        "SELECT u.id, u.username, u.role, s.csrf_hash FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id"
        " WHERE s.session_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND u.disabled_at IS NULL", secret_hash(session_id))
    if row is None:
        return None
    if method.upper() not in SAFE_METHODS:
        if not csrf_token or not hmac.compare_digest(secret_hash(csrf_token), bytes(row["csrf_hash"])):
            raise CsrfError(row["username"])
    return StaffUser(row["id"], row["username"], row["role"], "session")


async def audit(conn: Executor, actor: str, action: str, target: str | None = None,
                detail: dict[str, Any] | None = None, source: str | None = None) -> None:
    """Append one row to the audit log."""
    await conn.execute("INSERT INTO audit_log (actor, action, target, detail, source) VALUES ($1, $2, $3, $4::jsonb, $5)",
                       (actor or "?")[:128], action[:64], target, json.dumps(detail or {}, default=str),
                       source or None)


_pending: set[asyncio.Task] = set()


def audit_soon(pool: asyncpg.Pool, actor: str, action: str, target: str | None = None,
               detail: dict[str, Any] | None = None, source: str | None = None) -> asyncio.Task:
    """``audit`` from synchronous code on the running loop (a signal handler); a failure is logged."""

    async def write() -> None:
        try:
            await audit(pool, actor, action, target, detail, source)
        except Exception as exc:  # noqa: BLE001 - logged; the caller cannot wait for it
            log.error("audit log write failed", action=action, error=repr(exc))

    task = asyncio.get_running_loop().create_task(write())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task
