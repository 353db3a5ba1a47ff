"""Staff sign-in and sign-out, and ``GET /v1/staff/me`` (spec/http-api.md "Staff routes")."""
from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from gateway.http.auth import peer_address
from gateway.http.edge import json_object, text_field
from gateway.http.problems import Problem
from gateway.http.staff_auth import ALL_ROLES, SESSION_COOKIE, audit_staff, staff_user
from gateway.staff.accounts import SigninLimits, login, logout, record_signin_failure, signin_refusal

# Longer than any username or password the accounts allow; a longer one is refused before it is counted.
USERNAME_MAX = 128
PASSWORD_MAX = 1024


class StaffSessionRoutes:
    def __init__(self, services) -> None:
        self.s = services

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/staff/session", self.sign_in),
            web.delete("/v1/staff/session", self.sign_out),
            web.get("/v1/staff/me", self.me),
        ]

    async def sign_in(self, request: web.Request) -> web.Response:
        body = json_object(request, "30")
        username = text_field(body, "username", USERNAME_MAX, "30")
        password = text_field(body, "password", PASSWORD_MAX, "30")
        staff = self.s.config.staff
        limits = SigninLimits(staff.signin_failures_per_user, staff.signin_failures_per_address,
                              timedelta(minutes=staff.signin_window_minutes))
        source = peer_address(request)
        # Limits first: a refused attempt runs no scrypt (that is the CPU the limit protects), and is
        # refused even with the right password.
        refusal = await signin_refusal(self.s.pool, username, source, limits)
        if refusal is not None:
            await audit_staff(request, username[:128], "session.login_refused", username[:128],
                              {"reason": "too many failed sign-ins", "scope": refusal.scope,
                               "retry_after_s": refusal.retry_after_s})
            raise Problem(429, "too many failed sign-ins: try again later",
                          headers={"Retry-After": str(refusal.retry_after_s)})
        session = await login(self.s.pool, username, password,
                              ttl=timedelta(minutes=staff.session_idle_minutes))
        if session is None:
            await record_signin_failure(self.s.pool, username, source)
            # The claimed name, never the password.
            await audit_staff(request, username[:128], "session.login_failed", username[:128],
                              {"reason": "bad credentials"})
            raise Problem(401, "wrong username or password")
        await audit_staff(request, session.user, "session.login", session.user.username,
                          {"expires_at": session.expires_at.isoformat()})
        response = web.json_response({"csrf_token": session.csrf_token})
        # A browser-session cookie: the server ends the session after the idle time (sliding) or at the
        # latest SESSION_TTL after sign-in; a Max-Age could only disagree with that.
        response.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="Strict",
                            secure=request.secure, path="/")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL_ROLES)
        session_id = request.get("staff_session_id")
        if session_id is None:
            raise Problem(400, "no session to end: sign out with the session cookie", "30")
        await logout(self.s.pool, session_id)
        await audit_staff(request, user, "session.logout", user.username)
        response = web.Response(status=204)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def me(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL_ROLES)
        await audit_staff(request, user, "staff.me", user.username)
        return web.json_response({"username": user.username, "role": user.role})
