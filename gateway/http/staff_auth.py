"""Who is calling a staff route: a bearer token or a session cookie (spec/http-api.md "Staff routes").

A bank's HMAC signature is no staff credential. Unsafe methods of a session need the session's CSRF token
in ``X-CSRF-Token``. The ``admin`` role may call every staff route.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from gateway.http.auth import peer_address
from gateway.http.problems import Problem
from gateway.staff.accounts import CsrfError, StaffUser, audit, authenticate_bearer, authenticate_session
from gateway.staff.support import Actor

SESSION_COOKIE = "gw_session"
CSRF_HEADER = "X-CSRF-Token"
ALL_ROLES = frozenset({"support", "treasury", "admin"})
# Tokens and session ids are 43 characters (32 random bytes); anything much longer names no credential.
TOKEN_MAX = 256
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway staff"'}


async def staff_user(request: web.Request, roles: set[str] | frozenset[str]) -> StaffUser:
    """The authenticated staff user allowed one of ``roles`` (admin always is), or a Problem 401/403."""
    pool = request.app["services"].pool
    authorization = request.headers.get("Authorization")
    session_id = request.cookies.get(SESSION_COOKIE)
    user: StaffUser | None = None
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "staff credential required: Authorization: Bearer TOKEN or a session",
                          headers=_CHALLENGE)
        user = await authenticate_bearer(pool, token) if len(token) <= TOKEN_MAX else None
        if user is None:
            raise Problem(401, "unknown or revoked bearer token", headers=_CHALLENGE)
    elif session_id:
        idle = timedelta(minutes=request.app["services"].config.staff.session_idle_minutes)
        try:
            user = None if len(session_id) > TOKEN_MAX else await authenticate_session(
                pool, session_id, request.method, request.headers.get(CSRF_HEADER), idle=idle)
        except CsrfError as exc:
            await audit(pool, exc.username, "denied", f"{request.method} {request.path}",
                        {"reason": "csrf"}, peer_address(request) or None)
            raise Problem(403, str(exc)) from None
        if user is None:
            raise Problem(401, "session unknown, expired or ended; sign in again", headers=_CHALLENGE)
        request["staff_session_id"] = session_id
    else:
        raise Problem(401, "staff credential required: Authorization: Bearer TOKEN or a session",
                      headers=_CHALLENGE)
    request["staff_user"] = user
    if user.role != "admin" and user.role not in roles:
        await audit_staff(request, user, "denied", f"{request.method} {request.path}",
                          {"reason": "role", "role": user.role})
        raise Problem(403, f"role {user.role!r} may not do this", "05")
    return user


def actor(request: web.Request, user: StaffUser) -> Actor:
    """Who acts, as the staff services record it: the user, how they authenticated, and from where."""
    return Actor(user.username, user.via, peer_address(request) or None)


async def audit_staff(request: web.Request, user: StaffUser | str, action: str, target: str | None = None,
                      detail: dict[str, Any] | None = None) -> None:
    """One audit row for a staff action of this request (actor, source address, credential kind)."""
    actor = user.username if isinstance(user, StaffUser) else user
    extra = {"via": user.via} if isinstance(user, StaffUser) and user.via else {}
    await audit(request.app["services"].pool, actor, action, target, {**extra, **(detail or {})},
                peer_address(request) or None)
