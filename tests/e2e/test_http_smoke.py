"""A first pass over the HTTP API of a running gateway."""
from __future__ import annotations

from datetime import date

import pytest

from billdata import add_pbb

pytestmark = pytest.mark.integration

NOP = "327501000100100010"


async def test_inquiry_pay_status_receipt_reverse(gateway, db, http_client):
    await add_pbb(db, due=date(2099, 8, 31))
    bank = http_client()
    if True:
        status, headers, body = await bank.pbb_inquiry("32.75.010.001.001-0001.0", 2026)
        assert status == 200 and body["response_code"] == "00" and body["amount"]["total"] == 150_000
        assert headers["X-Request-Id"]
        status, _, paid = await bank.pbb_payment("k1", nop=NOP, tax_year=2026, amount=150_000, ntb="ABC123",
                                                 channel="teller", terminal_id="TLR0001")
        assert status == 200 and paid["response_code"] == "00", paid
        status, _, view = await bank.call("GET", f"/v1/payments/{paid['ntpd']}")
        assert status == 200 and view["status"] == "paid"
        status, headers, pdf = await bank.call("GET", f"/v1/payments/{paid['ntpd']}/receipt.pdf")
        assert status == 200 and pdf[:4] == b"%PDF"
        status, _, rev = await bank.reversal("r1", ntpd=paid["ntpd"], amount=150_000, reason="test")
        assert status == 200 and rev["response_code"] == "00", rev
    code = paid["validation_code"]
    anyone = http_client(secret="x")
    if True:
        status, _, check = await anyone.call("GET", f"/v1/proofs/{paid['ntpd']}?code={code}", sign=False)
        assert status == 200 and check["status"] == "reversed", check
        status, _, keys = await anyone.call("GET", "/v1/proofs/keys", sign=False)
        assert status == 200 and keys[0]["alg"] == "Ed25519"
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            status, _, _ = await anyone.call("GET", path, sign=False)
            assert status == 200, path
