"""Schemathesis against a running ``gateway serve``: requests generated from its OpenAPI document.

Every operation of the document gets its documented examples, the coverage phase's boundary cases (missing
or malformed parameters, headers and bodies) and a bounded number of generated requests, valid and invalid,
all derived from a fixed seed. Bank routes are signed with the test bank's secret and a fresh nonce (and a
fresh `Idempotency-Key` where the generated one is valid, so that payments are not all replays); staff
routes carry an admin's bearer token. A few bills match the document's examples, so generated inquiries and
payments reach real bills and not only "bill not found".

Each answer must be no server error (503 with RC 90 / 91 is the contract's "try again", not a crash), must
not be a 401 where the request carried good credentials, and must conform to the document: documented
status, content type, headers and body schema, checked by Schemathesis and again by
tests/helpers/openapi_check.py (strict integers, RFC 3339 formats). A request the document calls invalid must
be refused with a 4xx, and a method the route does not have gets a 405 problem.

The cases are generated from ``gateway.http.openapi.DOCUMENT`` at collection time (one test per operation),
and the module's gateway first checks that it serves exactly that document at /openapi.json.
Schemathesis's fixture-loaded schemas (``schemathesis.pytest.from_fixture``) would fetch it instead, but
they read ``Node._nodeid``, which pytest 9 no longer has.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import requests
import schemathesis
from multidict import CIMultiDict
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billdata import add_bphtb, add_pbb
from gateway.http.app import BANK_PREFIXES
from gateway.http.auth import signature
from gateway.http.openapi import DOCUMENT, PROBLEM_JSON
from helpers.gateway import DEFAULT_BANKS, Gateway, free_port
from helpers.openapi_check import assert_conforms

pytestmark = pytest.mark.integration

BANK, SECRET = "110", "secret-110"  # helpers.gateway.DEFAULT_BANKS
STAFF_USER, STAFF_PASSWORD = "fuzz-admin", "correct horse battery staple"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")

# Bounded and deterministic: at most 25 generated requests per operation on top of the examples and the
# coverage cases, and the same requests on every run (a fixed seed, no example database).
CONFIG = schemathesis.Config.from_dict({
    "seed": 20261123,
    "suppress-health-check": ["all"],
    "generation": {"mode": "all", "max-examples": 25, "deterministic": True, "database": "none",
                   "with-security-parameters": False},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False}},
})

# negative_data_rejection: a request the document says is invalid must be refused (4xx), so that the
# document's request constraints are the app's and not stricter ones.
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]


def _is_staff(path: str, method: str) -> bool:
    return (path.startswith(("/v1/staff/", "/v1/settlements/", "/v1/transactions", "/v1/reconciliation-items"))
            and not (path == "/v1/staff/session" and method == "POST"))


class Credentials(requests.auth.AuthBase):
    """Signs every bank request over the exact bytes sent (spec/http-api.md "Bank authentication") and gives
    staff requests the admin's bearer token. Public routes go as generated."""

    def __init__(self, staff_token: str):
        self.staff_token = staff_token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        path_qs = request.path_url
        path = urlsplit(path_qs).path
        if path.startswith(BANK_PREFIXES):
            if request.method == "POST" and _IDEMPOTENCY_KEY.match(request.headers.get("Idempotency-Key", "")):
                request.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4().hex}"
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            timestamp, nonce = str(int(time.time())), secrets.token_urlsafe(24)
            request.headers.update({
                "X-Bank-Code": BANK, "X-Timestamp": timestamp, "X-Nonce": nonce,
                "X-Signature": signature(SECRET, request.method, path_qs, timestamp, nonce, body)})
        elif _is_staff(path, request.method):
            request.headers["Authorization"] = f"Bearer {self.staff_token}"
        return request


def _staff(gw: Gateway, *args: str, stdin: str | None = None) -> str:
    run = subprocess.run([sys.executable, "-m", "gateway", "staff", *args, "--config", str(gw.config_path)],
                         input=stdin, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GATEWAY_DATABASE_URL": gw.db_url})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@dataclass
class Served:
    gw: Gateway
    session: requests.Session


@pytest.fixture(scope="module")
async def served(pg_server_url, pg_template, tmp_path_factory):
    """One gateway for the whole module (like conftest's ``make_gateway``, which is per test), over a fresh
    database holding the bills the document's examples name and an admin with a bearer token."""
    name = f"gw_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    db_url = urlunsplit(urlsplit(pg_server_url)._replace(path="/" + name))
    tmp = tmp_path_factory.mktemp("fuzz")
    port, http_port = free_port(), free_port()
    config = tmp / "gateway.toml"
    config.write_text(f"""
[http]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"
[state]
dir = "{tmp / 'state'}"
[proof]
key_dir = "{tmp / 'keys'}"
[iso8583]
listen = "127.0.0.1:{port}"
{DEFAULT_BANKS}
""")
    gw = Gateway(db_url=db_url, config_path=config, port=port, log_path=tmp / "gateway.log", http_port=http_port)
    db = await asyncpg.connect(db_url)
    session = requests.Session()
    try:
        # NOP 327501000100100010 year 2026 is payable with the example's 154500; SSPD 20261100012356 with
        # 5000000. An unpaid and a paid older year make the arrears more than one line.
        await add_pbb(db, year=2026, principal=154_500, due=date(2099, 8, 31))
        await add_pbb(db, year=2025, principal=120_000, due=date(2025, 8, 31))
        await add_pbb(db, year=2024, status="paid", due=date(2024, 8, 31))
        assert await add_bphtb(db, serial=123, valid_until=date(2099, 12, 31)) == "20261100012356"
        gw.start()
        _staff(gw, "add", STAFF_USER, "--role", "admin", "--password-stdin", stdin=STAFF_PASSWORD + "\n")
        session.auth = Credentials(_staff(gw, "token", STAFF_USER))
        served_document = requests.get(gw.http_url + "/openapi.json", timeout=30).json()
        assert served_document == json.loads(json.dumps(DOCUMENT)), "the gateway serves another document"
        yield Served(gw, session)
    finally:
        session.close()
        gw.stop(signal.SIGTERM, timeout=10)
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


schema = schemathesis.openapi.from_dict(json.loads(json.dumps(DOCUMENT)), config=CONFIG)


@schema.parametrize()
def test_generated_requests_get_documented_answers(case, served):
    response = case.call(base_url=served.gw.http_url, session=served.session, timeout=30)
    sent = response.request
    path = urlsplit(sent.url).path
    headers = CIMultiDict((name, value) for name, values in response.headers.items() for value in values)
    is_json = "json" in headers.get("Content-Type", "")
    where = f"{sent.method} {sent.url} → {response.status_code}: {response.content[:500]!r}"
    if response.status_code >= 500:
        body = response.json() if is_json else {}
        assert response.status_code == 503 and body.get("response_code") in ("90", "91"), f"server error: {where}"
    if response.status_code == 401:
        # Every bank request is signed and every staff request carries a good token: a 401 is a signing or
        # authentication fault. Only the sign-in itself answers 401 for generated (wrong) credentials.
        assert not path.startswith(BANK_PREFIXES) and not _is_staff(path, sent.method), f"401: {where}"
    if sent.method.lower() not in DOCUMENT["paths"][case.operation.path]:
        # The coverage phase also tries methods the route does not have (HEAD is every GET's).
        assert sent.method == "HEAD" or response.status_code == 405, f"undocumented method answered: {where}"
        assert response.status_code == 200 or headers.get("Content-Type", "").startswith(PROBLEM_JSON), where
        return
    case.validate_response(response, checks=CHECKS)
    parsed = response.json() if response.content and is_json else response.content
    assert_conforms(sent.method, sent.path_url, response.status_code, headers, parsed)
