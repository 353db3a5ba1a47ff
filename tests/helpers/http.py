"""Bank clients of the JSON/HTTP API and checks of their answers, with the bill the HTTP tests pay.

``CheckedHttpClient`` checks every answer against the OpenAPI document and its ``X-Request-Id``;
``assert_problem`` and ``assert_business`` pin the exact status, media type and response code.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.banksim.http_client import HttpBankClient

from .dates import today
from .openapi_check import assert_conforms

# The PBB bill (billdata.add_pbb's NOP) and the BPHTB object of the HTTP tests.
NOP = "327501000100100010"
BPHTB_NOP = "327501000100100020"
FAR_DUE = date(2099, 8, 31)  # no penalty: total due = principal
PRINCIPAL = 150_000
YEAR = today().year


class CheckedHttpClient(HttpBankClient):
    """A bank's HTTP client whose every answer is checked against the OpenAPI document and carries an
    ``X-Request-Id`` (the caller's, when it sent one)."""

    async def call(self, method, path_qs, body=None, **kw):
        status, headers, parsed = await super().call(method, path_qs, body, **kw)
        assert_conforms(method, path_qs, status, headers, parsed)
        assert headers.get("X-Request-Id"), (method, path_qs, status, parsed)
        sent = (kw.get("extra_headers") or {}).get("X-Request-Id")
        if sent:
            assert headers["X-Request-Id"] == sent
        return status, headers, parsed


def assert_problem(answer, status: int, rc: str | None = None) -> dict:
    """An RFC 9457 problem with this status and response code (none for 401/404/409/413/429)."""
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["Content-Type"].split(";")[0] == "application/problem+json", headers["Content-Type"]
    assert isinstance(body, dict), body
    assert body["status"] == status and body["type"] and body["title"] and isinstance(body["detail"], str), body
    if rc is None:
        assert "response_code" not in body, body
    else:
        assert body["response_code"] == rc, body
    return body


def assert_business(answer, rc: str, replayed: bool = False) -> dict:
    status, headers, body = answer
    assert status == 200, (status, body)
    assert headers["Content-Type"].split(";")[0] == "application/json"
    assert body["response_code"] == rc, body
    assert (headers.get("Idempotent-Replayed") == "true") == replayed, dict(headers)
    return body


def check_rfc3339_local(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(hours=7), text
    return moment


def pbb_body(amount: int = PRINCIPAL, *, nop: str = NOP, year: int | str = YEAR, ntb: str = "NTB-1",
             channel: str = "teller", **more) -> dict:
    return {"nop": nop, "tax_year": year, "amount": amount, "ntb": ntb, "channel": channel, **more}


def no_relief(principal: int, penalty: int, total: int, months_late: int | None = None) -> dict:
    """An answer's ``amount`` with no relief program: the gross amounts are those to pay, nothing taken off."""
    out = {"principal": principal, "penalty": penalty, "total": total}
    if months_late is not None:
        out["months_late"] = months_late
    return {**out, "principal_gross": principal, "discount": 0, "penalty_gross": penalty, "penalty_waived": 0,
            "relief": None}
