"""Staff accounts over asyncpg: users, bearer tokens, browser sessions and the audit log.

Secrets never reach the database in clear: passwords as scrypt hashes (``passwords``), bearer tokens,
session ids and CSRF tokens (32 random bytes each) as SHA-256. Authentication is a lookup by hash.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from gateway.staff.passwords import check_policy, dummy_verify, hash_password, verify_password
from gateway.store import staff_accounts as store
from gateway.store.staff_accounts import Executor

log = structlog.get_logger("gateway.staff")

ROLES = ("support", "treasury", "admin")
# A session lives at most this long even when in constant use; without use it ends sooner (the idle time,
# [staff] session_idle_minutes), each use moving its end on (sliding expiry).
SESSION_TTL = timedelta(hours=12)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


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
        user_id = await store.insert_user(conn, username, role, encoded)
    except asyncpg.UniqueViolationError:
        raise StaffError(f"staff user {username!r} already exists") from None
    return StaffUser(user_id, username, role)


async def find_user(conn: Executor, username: str) -> StaffUser | None:
    row = await store.active_user(conn, username)
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
    await store.insert_token(conn, secret_hash(token), user.id)
    return token


async def revoke_user(conn: Executor, username: str) -> tuple[int, int]:
    """End every token and session of ``username``; returns (tokens, sessions) ended."""
    user = await _require_user(conn, username)
    tokens = await store.revoke_tokens(conn, user.id)
    sessions = await store.revoke_sessions(conn, user.id)
    return tokens, sessions


async def login(conn: Executor, username: str, password: str, *, ttl: timedelta = SESSION_TTL) -> Session | None:
    """A new session when the password is right, else None (the same time spent for an unknown user).

    ``ttl``: until the session's first expiry; with sliding expiry the idle time (see authenticate_session).
    Callers limit attempts first (``signin_refusal``): this runs scrypt."""
    row = None
    if USERNAME.fullmatch(username or ""):
        row = await store.active_user_credentials(conn, username)
    if row is None:
        await asyncio.to_thread(dummy_verify, password)
        return None
    if not await asyncio.to_thread(verify_password, password, row["password_hash"]):
        return None
    session_id, csrf = new_secret(), new_secret()
    expires_at = await store.insert_session(conn, secret_hash(session_id), row["id"], secret_hash(csrf), ttl)
    return Session(StaffUser(row["id"], row["username"], row["role"], "session"), session_id, csrf, expires_at)


async def logout(conn: Executor, session_id: str) -> bool:
    return await store.revoke_session(conn, secret_hash(session_id))


async def authenticate_bearer(conn: Executor, token: str) -> StaffUser | None:
    row = await store.user_of_token(conn, secret_hash(token))
    return StaffUser(row["id"], row["username"], row["role"], "bearer") if row else None


async def authenticate_session(conn: Executor, session_id: str, method: str,
                               csrf_token: str | None, *, idle: timedelta | None = None) -> StaffUser | None:
    """The session's user, or None for an unknown, expired or revoked session.

    Raises CsrfError for an unsafe method without the session's CSRF token. With ``idle``, a successful use
    moves the session's expiry to ``idle`` from now (never beyond SESSION_TTL after it began)."""
    row = await store.live_session(conn, secret_hash(session_id))
    if row is None:
        return None
    if method.upper() not in SAFE_METHODS:
        if not csrf_token or not hmac.compare_digest(secret_hash(csrf_token), bytes(row["csrf_hash"])):
            raise CsrfError(row["username"])
    if idle is not None:
        await store.extend_session(conn, row["session_id"], SESSION_TTL, idle)
    return StaffUser(row["id"], row["username"], row["role"], "session")


@dataclass(frozen=True)
class SigninLimits:
    """spec/http-api.md "Failed sign-ins": [staff] signin_failures_per_user / _per_address / _window_minutes."""

    per_user: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SigninRefusal:
    scope: str            # "username" or "address"
    retry_after_s: int    # until the window lets one attempt through


async def signin_refusal(conn: Executor, username: str, source: str, limits: SigninLimits) -> SigninRefusal | None:
    """Whether a sign-in attempt must be refused unheard, before any password is checked.

    Counted in PostgreSQL, so every gateway instance sees the same failures, on the database's clock. A
    username's count starts afresh after its last successful sign-in. The wait is until the oldest failure
    that keeps the count at the limit leaves the window."""
    row = await store.signin_failure_horizon(conn, _claimed(username), source, limits.window, limits.per_user,
                                             limits.per_address)
    waits = [(scope, row[column] + limits.window - row["now"]) for scope, column in
             (("username", "user_until"), ("address", "address_until")) if row[column] is not None]
    if not waits:
        return None
    scope, wait = max(waits, key=lambda w: w[1])
    return SigninRefusal(scope, max(1, math.ceil(wait.total_seconds())))


async def record_signin_failure(conn: Executor, username: str, source: str) -> None:
    await store.insert_signin_failure(conn, _claimed(username), source)


def _claimed(username: str) -> str:
    """A claimed username as counted and audited: bounded (the edge has checked it is clean text)."""
    return username[:128]


async def audit(conn: Executor, actor: str, action: str, target: str | None = None,
                detail: dict[str, Any] | None = None, source: str | None = None) -> None:
    """Append one row to the audit log."""
    await store.insert_audit(conn, (actor or "?")[:128], action[:64], target, json.dumps(detail or {}, default=str),
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
