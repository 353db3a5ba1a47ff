"""Staff sign-in limits over real PostgreSQL (spec/http-api.md "Failed sign-ins"): the counts, the wait, and
that a refused attempt runs no scrypt (the sign-in route in process, password checks counted)."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import StaffConfig
from gateway.http.problems import Problem, problem_response
from gateway.http.staff_session_routes import StaffSessionRoutes
from gateway.staff import accounts, passwords
from gateway.staff.accounts import SigninLimits, record_signin_failure, signin_refusal

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
LIMITS = SigninLimits(per_user=3, per_address=5, window=timedelta(minutes=15))


async def test_counts_per_username_and_address_and_the_wait(db):
    await accounts.add_user(db, "ani", "support", PASSWORD)
    assert await signin_refusal(db, "ani", "10.0.0.1", LIMITS) is None
    for _ in range(3):
        await record_signin_failure(db, "ani", "10.0.0.1")
    refusal = await signin_refusal(db, "ani", "10.0.0.9", LIMITS)
    assert refusal.scope == "username" and 14 * 60 < refusal.retry_after_s <= 15 * 60
    assert await signin_refusal(db, "budi", "10.0.0.9", LIMITS) is None
    for _ in range(2):
        await record_signin_failure(db, "budi", "10.0.0.1")
    assert (await signin_refusal(db, "budi", "10.0.0.1", LIMITS)).scope == "address"
    assert await signin_refusal(db, "budi", "10.0.0.2", LIMITS) is None
    # The wait ends when the failure that holds the count at the limit leaves the window: the 3rd newest.
    await db.execute("UPDATE signin_failures SET at = now() - interval '20 minutes' WHERE id = 1")
    await db.execute("UPDATE signin_failures SET at = now() - interval '10 minutes' WHERE id IN (2, 3)")
    await record_signin_failure(db, "ani", "10.0.0.3")
    refusal = await signin_refusal(db, "ani", "10.0.0.9", LIMITS)
    assert refusal.scope == "username" and 4 * 60 < refusal.retry_after_s <= 5 * 60
    # A successful sign-in starts the username's count afresh (the address's stays).
    await accounts.login(db, "ani", PASSWORD)
    assert await signin_refusal(db, "ani", "10.0.0.9", LIMITS) is None


async def test_a_refused_attempt_runs_no_scrypt(db, pool, monkeypatch):
    await accounts.add_user(db, "ani", "support", PASSWORD)
    checks: list[str] = []
    real_verify, real_dummy = passwords.verify_password, passwords.dummy_verify

    def verify(password, encoded):
        checks.append("verify")
        return real_verify(password, encoded)

    def dummy(password):
        checks.append("dummy")
        return real_dummy(password)

    monkeypatch.setattr(accounts, "verify_password", verify)
    monkeypatch.setattr(accounts, "dummy_verify", dummy)

    @web.middleware
    async def edge(request, handler):
        request["body"] = await request.read()
        try:
            return await handler(request)
        except Problem as p:
            return problem_response(p.status, p.detail, p.response_code, p.headers)

    app = web.Application(middlewares=[edge])
    app["services"] = SimpleNamespace(pool=pool, config=SimpleNamespace(staff=StaffConfig(
        signin_failures_per_user=2, signin_failures_per_address=3)))
    app.add_routes(StaffSessionRoutes(app["services"]).routes())
    async with TestClient(TestServer(app)) as client:
        async def sign_in(user: str, password: str) -> int:
            async with client.post("/v1/staff/session", json={"username": user, "password": password}) as r:
                return r.status

        assert [await sign_in("ani", "wrong password!!") for _ in range(2)] == [401, 401]
        assert checks == ["verify", "verify"]
        assert await sign_in("ani", PASSWORD) == 429
        assert await sign_in("nobody", "wrong password!!") == 401
        assert checks == ["verify", "verify", "dummy"]
        # Three failures from this address: every name is refused now, unheard.
        assert [await sign_in(name, PASSWORD) for name in ("ani", "nobody", "budi")] == [429] * 3
        assert checks == ["verify", "verify", "dummy"]
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["session.login_failed"] * 2 + ["session.login_refused"] + ["session.login_failed"] + [
        "session.login_refused"] * 3
