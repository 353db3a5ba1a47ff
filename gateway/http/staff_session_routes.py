"""Staff sign-in and sign-out, and ``GET /v1/staff/me`` (spec/http-api.md "Staff routes")."""
from __future__ import annotations

import json

from aiohttp import web

from gateway.http.problems import Problem
from gateway.http.staff_auth import ALL_ROLES, SESSION_COOKIE, audit_staff, staff_user
from gateway.staff.accounts import SESSION_TTL, login, logout


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
        try:
            body = json.loads(request.get("body") or b"")
        except ValueError:
            raise Problem(400, "body must be JSON {\"username\":…,\"password\":…}") from None
        username = body.get("username") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise Problem(400, "body must be JSON {\"username\":…,\"password\":…}")
        session = await login(self.s.pool, username, password)
        if session is None:
            # The claimed name, never the password.
            await audit_staff(request, username[:128], "session.login_failed", username[:128],
                              {"reason": "bad credentials"})
            raise Problem(401, "wrong username or password")
        await audit_staff(request, session.user, "session.login", session.user.username,
                          {"expires_at": session.expires_at.isoformat()})
        response = web.json_response({"csrf_token": session.csrf_token})
        response.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="Strict",
                            secure=request.secure, path="/", max_age=int(SESSION_TTL.total_seconds()))
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL_ROLES)
        session_id = request.get("staff_session_id")
        if session_id is None:
            raise Problem(400, "no session to end: sign out with the session cookie")
        await logout(self.s.pool, session_id)
        await audit_staff(request, user, "session.logout", user.username)
        response = web.Response(status=204)
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def me(self, request: web.Request) -> web.Response:
        user = await staff_user(request, ALL_ROLES)
        await audit_staff(request, user, "staff.me", user.username)
        return web.json_response({"username": user.username, "role": user.role})
