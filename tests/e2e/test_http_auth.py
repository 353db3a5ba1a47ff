"""Bank authentication of the JSON/HTTP API (spec/http-api.md "Bank authentication"), over real HTTP.

Every bad signature is a 401 problem and changes nothing in the database; one bank never reads, reverses
or downloads another bank's payment; the allow list applies to HTTP as to ISO 8583.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial

import aiohttp
import pytest

from billdata import add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.domain.sspd import make_registration
from helpers.dates import today
from helpers.db import bill_status, counts
from helpers.gateway import bank_toml, start, two_banks
from helpers.http import FAR_DUE, NOP, PRINCIPAL, YEAR, assert_business, assert_problem, pbb_body

pytestmark = pytest.mark.integration

PAY = "/v1/pbb/payments"


async def test_bad_signatures_are_401_and_change_nothing(make_gateway, db, http_client):
    gw = await two_banks(make_gateway)
    await add_pbb(db, due=FAR_DUE)
    bank = http_client(gw=gw)
    data = json.dumps(pbb_body()).encode()
    now = int(time.time())

    # A request that is accepted, whose nonce is then replayed.
    used = "n" * 20
    inquiry = f"/v1/pbb/bills/{NOP}/{YEAR}"
    inquiry_headers = bank.headers("GET", inquiry, b"", nonce=used)
    assert_business(await bank.call("GET", inquiry, sign=False, extra_headers=inquiry_headers), "00")
    before = await counts(db)

    def signed(**kw) -> dict[str, str]:
        return bank.headers("POST", PAY, data, **kw)

    def without(name: str) -> dict[str, str]:
        headers = signed()
        del headers[name]
        return headers

    other = json.dumps(pbb_body(PRINCIPAL + 1)).encode()
    cases: list[tuple[str, Callable[[], dict[str, str]], bytes]] = [
        ("wrong secret", lambda: signed(secret="secret-120"), data),
        ("timestamp 302 s old", lambda: signed(timestamp=int(time.time()) - 302), data),
        ("timestamp 302 s ahead", lambda: signed(timestamp=int(time.time()) + 302), data),
        ("timestamp an hour old", lambda: signed(timestamp=now - 3600), data),
        ("tampered body", lambda: signed(), other),
        ("body signed as empty", lambda: signed() | bank.headers("POST", PAY, b""), data),
        ("signed for another path", lambda: bank.headers("POST", "/v1/bphtb/payments", data), data),
        ("signed for another method", lambda: bank.headers("PUT", PAY, data), data),
        ("signed with a query", lambda: bank.headers("POST", PAY + "?x=1", data), data),
        ("another bank's code", lambda: signed() | {"X-Bank-Code": "120"}, data),
        ("unknown bank", lambda: signed() | {"X-Bank-Code": "999"}, data),
        ("empty bank code", lambda: signed() | {"X-Bank-Code": ""}, data),
        ("nonce of 15", lambda: signed(nonce="a" * 15), data),
        ("nonce of 65", lambda: signed(nonce="a" * 65), data),
        ("nonce with a dot", lambda: signed(nonce="abcdefgh.ijklmnop"), data),
        ("nonce with a plus", lambda: signed(nonce="abcdefgh+ijklmnop"), data),
        ("nonce with a space", lambda: signed(nonce="abcdefgh ijklmnop"), data),
        ("replayed nonce", lambda: signed(nonce=used), data),
        ("signature in upper case", lambda: (h := signed()) | {"X-Signature": h["X-Signature"].upper()}, data),
        ("signature cut short", lambda: (h := signed()) | {"X-Signature": h["X-Signature"][:-1]}, data),
        ("signature not hex", lambda: signed() | {"X-Signature": "z" * 64}, data),
        ("timestamp with a fraction", lambda: signed(timestamp=now) | {"X-Timestamp": f"{now}.0"}, data),
        ("timestamp negative", lambda: signed() | {"X-Timestamp": "-1"}, data),
        ("timestamp in ms", lambda: signed() | {"X-Timestamp": str(now * 1000)}, data),
        ("timestamp in superscript digits", lambda: signed() | {"X-Timestamp": "\u00b9\u00b2\u00b3"}, data),
        ("timestamp in Arabic-Indic digits",
         lambda: signed() | {"X-Timestamp": "".join(chr(0x0660 + int(d)) for d in str(now))}, data),
        ("timestamp of 5000 digits", lambda: signed() | {"X-Timestamp": "1" * 5000}, data),
    ]
    cases += [(f"no {name}", partial(without, name), data) for name in ("X-Bank-Code", "X-Timestamp", "X-Nonce", "X-Signature")]
    for n, (name, make_headers, body) in enumerate(cases):
        # Headers are made at sending time: the window's edges are measured from the gateway's clock then.
        answer = await bank.call("POST", PAY, raw=body, sign=False, extra_headers=make_headers(), idempotency_key=f"k{n}")
        assert answer[0] == 401, (name, answer)
        assert_problem(answer, 401)
    # The exact accepted request again (same nonce, same signature): a replay.
    assert_problem(await bank.call("GET", inquiry, sign=False, extra_headers=inquiry_headers), 401)
    # A signed query that was changed on the way.
    registration = make_registration(2026, 11, 123)
    headers = bank.headers("GET", f"/v1/bphtb/bills/{registration}?tax_year=2026", b"")
    assert_problem(await bank.call("GET", f"/v1/bphtb/bills/{registration}?tax_year=2025", sign=False,
                                   extra_headers=headers), 401)

    assert await counts(db) == before
    assert await bill_status(db, "PBB", NOP + str(YEAR)) == "unpaid"
    # Within the window either way the same body is accepted, with a fresh nonce each time.
    for n, offset in enumerate((-290, 290)):
        headers = bank.headers("GET", inquiry, b"", timestamp=int(time.time()) + offset)
        assert_business(await bank.call("GET", inquiry, sign=False, extra_headers=headers), "00")
    paid = await bank.call("POST", PAY, raw=data, sign=False, extra_headers=signed(), idempotency_key="k0")
    assert_business(paid, "00")
    assert (await counts(db))["payments"] == 1


async def test_one_bank_cannot_see_reverse_or_print_anothers_payment(make_gateway, db, http_client):
    gw = await two_banks(make_gateway)
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    b110, b120 = http_client(gw=gw), http_client("120", "secret-120", gw=gw)
    paid = assert_business(await b110.pbb_payment("K", **pbb_body()), "00")
    ntpd = paid["ntpd"]

    not_found = assert_problem(await b120.call("GET", f"/v1/payments/{ntpd}"), 404)
    nobody = ntpd[:-5] + "00000"  # almost certainly bad check digits; and a valid unknown one below
    unknown = make_ntpd(today(), Tax.PBB, 999_999_998)
    for path in (f"/v1/payments/{unknown}", f"/v1/payments/{nobody}"):
        assert assert_problem(await b120.call("GET", path), 404) == not_found  # nothing tells them apart
    assert assert_problem(await b120.call("GET", f"/v1/payments/{ntpd}/receipt.pdf"), 404)["detail"] == (
        assert_problem(await b120.call("GET", f"/v1/payments/{unknown}/receipt.pdf"), 404)["detail"])
    body = assert_business(await b120.reversal("R", ntpd=ntpd, amount=PRINCIPAL), "12")
    assert "ntpd" not in body and "amount" not in body
    body = assert_business(await b120.pbb_payment("K2", **pbb_body()), "88")
    assert "ntpd" not in body  # another bank's NTPD is not revealed by an RC 88 either
    body = assert_business(await b120.pbb_inquiry(NOP, YEAR), "88")
    assert "ntpd" not in body
    # Nonces are the bank's own too: 120 may use a nonce 110 used.
    inquiry = f"/v1/pbb/bills/{NOP}/{YEAR - 1}"
    shared = "shared-nonce-0123456789"
    for client in (b110, b120):
        answer = await client.call("GET", inquiry, sign=False, extra_headers=client.headers("GET", inquiry, b"",
                                                                                            nonce=shared))
        assert_business(answer, "00")
    # Idempotency keys are the bank's own: 120 may use "K" for its own payment.
    other = assert_business(await b120.pbb_payment("K", **pbb_body(year=YEAR - 1, ntb="N120")), "00")
    assert other["ntpd"] != ntpd

    c = await counts(db)
    assert (c["payments"], c["active_payments"], c["reversals"]) == (2, 2, 0)
    status, _, view = await b110.call("GET", f"/v1/payments/{ntpd}")
    assert status == 200 and view["status"] == "paid"
    assert (await b110.call("GET", f"/v1/payments/{ntpd}/receipt.pdf"))[0] == 200
    assert_problem(await b110.call("GET", f"/v1/payments/{other['ntpd']}"), 404)
    keys = await db.fetch("SELECT bank_code, key FROM message_keys WHERE key = 'K' ORDER BY bank_code")
    assert [tuple(k) for k in keys] == [("110", "K"), ("120", "K")]


async def test_allow_list_applies_to_http(make_gateway, db, http_client):
    """Bank 120 may call only from 127.0.0.2 and bank 110 only from 127.0.0.1 (both on the shared ISO
    listener: the allow lists do not overlap)."""
    banks = bank_toml("110", "secret-110") + bank_toml("120", "secret-120", allow=("127.0.0.2/32",))
    gw = await start(make_gateway, banks=banks)
    await add_pbb(db, due=FAR_DUE)

    def from_127_0_0_2(client):
        spare = client.session
        client.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)), timeout=spare.timeout)
        client.spare = spare  # closed below
        return client

    b120_here = http_client("120", "secret-120", gw=gw)
    b120_there = from_127_0_0_2(http_client("120", "secret-120", gw=gw))
    b110_there = from_127_0_0_2(http_client("110", "secret-110", gw=gw))
    b110_here = http_client("110", "secret-110", gw=gw)
    try:
        assert_problem(await b120_here.pbb_inquiry(NOP, YEAR), 403, "05")
        assert_problem(await b110_there.pbb_inquiry(NOP, YEAR), 403, "05")
        assert_problem(await b110_there.pbb_payment("P", **pbb_body()), 403, "05")
        assert (await counts(db))["payments"] == 0
        assert_business(await b120_there.pbb_inquiry(NOP, YEAR), "00")
        assert_business(await b110_here.pbb_inquiry(NOP, YEAR), "00")
        paid = assert_business(await b120_there.pbb_payment("P", **pbb_body()), "00")
        # The public routes take no bank and no allow list.
        status, _, check = await b110_there.call("GET", f"/v1/proofs/{paid['ntpd']}?code={paid['validation_code']}",
                                                 sign=False)
        assert status == 200 and check["status"] == "valid" and check["bank"] == "120"
    finally:
        for client in (b120_there, b110_there):
            await client.spare.close()
    row = await db.fetchrow("SELECT bank_code, via FROM payments")
    assert tuple(row) == ("120", "http")


async def test_the_testing_clock_offset_never_applies_to_authentication(make_gateway, db, http_client):
    gw = await start(make_gateway, extra="[testing]\nenabled = true\nclock_offset_seconds = 600\n")
    await add_pbb(db, due=FAR_DUE)
    bank = http_client(gw=gw)
    assert_business(await bank.pbb_inquiry(NOP, YEAR), "00")  # the real clock's timestamp
    inquiry = f"/v1/pbb/bills/{NOP}/{YEAR}"
    for offset in (600, 301):
        headers = bank.headers("GET", inquiry, b"", timestamp=int(time.time()) + offset)
        assert_problem(await bank.call("GET", inquiry, sign=False, extra_headers=headers), 401)
