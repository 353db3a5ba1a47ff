"""ISO 8583 over real TCP against a running ``gateway serve``."""
from __future__ import annotations

from datetime import date

import pytest

from billdata import add_pbb

pytestmark = pytest.mark.integration

NOP = "327501000100100010"


async def test_inquiry_payment_reversal_roundtrip(gateway, db):
    await add_pbb(db, due=date(2099, 8, 31))
    async with gateway.client() as bank:
        inq = await bank.request(bank.inquiry("pbb", NOP + "2026"))
        assert inq["t"] == "0210" and inq["39"] == "00"
        assert inq["4"] == "000000150000"
        pay_req = bank.payment("pbb", NOP + "2026", 150_000)
        pay = await bank.request(pay_req)
        assert pay["39"] == "00" and len(pay["47"]) == 18
        rev = await bank.request(bank.reversal(pay_req))
        assert rev["t"] == "0410" and rev["39"] == "00"
        echo = await bank.request(bank.network("301"))
        assert echo["t"] == "0810" and echo["39"] == "00"


async def test_metrics_count_iso_messages(gateway, db):
    import urllib.request

    await add_pbb(db, due=date(2099, 8, 31))
    async with gateway.client() as bank:
        assert (await bank.request(bank.inquiry("pbb", NOP + "2026")))["39"] == "00"
        assert (await bank.request(bank.inquiry("pbb", NOP + "2020")))["39"] == "14"
        text = urllib.request.urlopen(gateway.http_url + "/metrics", timeout=10).read().decode()
    assert 'gateway_messages_total{bank="110",channel="iso",mti="0200",processing_code="341019",rc="00"} 1.0' in text
    assert 'gateway_messages_total{bank="110",channel="iso",mti="0200",processing_code="341019",rc="14"} 1.0' in text
    assert "gateway_iso_connections 1.0" in text
    assert "gateway_db_pool_connections" in text
