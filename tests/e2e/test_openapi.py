"""A running gateway against its OpenAPI document: every route, the business answers and the problem answers.

Every answer goes through ``http_client()``, whose ``CheckedHttpClient.call`` asserts that it conforms to the
document (tests/helpers/openapi_check.py); the assertions here only pin which answer each request gets.
"""
from __future__ import annotations

import asyncio
import json
import time
from datetime import date

import aiohttp
import pytest

from billdata import add_bphtb, add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.http.openapi import DOCUMENT
from helpers.dates import today
from helpers.gateway import free_port
from helpers.http import no_relief
from helpers.openapi_check import assert_conforms

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
NOP_DISPLAY = "32.75.010.001.001-0001.0"
BPHTB_NOP = "327501000100100020"


def pbb_payment(**overrides):
    body = {"nop": NOP, "tax_year": today().year, "amount": 150_000, "ntb": "NTB0001", "channel": "teller",
            "terminal_id": "TLR0001"}
    return {**body, **overrides}


async def test_openapi_json_is_the_document(gateway, http_client):
    anyone = http_client()
    status, headers, body = await anyone.call("GET", "/openapi.json", sign=False)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body == json.loads(json.dumps(DOCUMENT))
    assert body["openapi"].startswith("3.1.")


async def test_public_operations_routes(gateway, http_client):
    anyone = http_client()
    status, headers, body = await anyone.call("GET", "/healthz", sign=False, extra_headers={"X-Request-Id": "me-1"})
    assert status == 200 and body == {"status": "ok"} and headers["X-Request-Id"] == "me-1"
    status, _, body = await anyone.call("GET", "/readyz", sign=False)
    assert status == 200 and body["status"] == "ready" and body["database"] == "ok"
    status, headers, body = await anyone.call("GET", "/metrics", sign=False)
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and b"# HELP" in body
    status, _, keys = await anyone.call("GET", "/v1/proofs/keys", sign=False)
    assert status == 200 and keys and keys[0]["alg"] == "Ed25519"


async def test_pbb_inquiries_and_arrears(gateway, db, http_client):
    year = today().year
    await add_pbb(db, year=year, due=date(2099, 8, 31))
    await add_pbb(db, year=year - 1, status="cancelled", due=date(year - 1, 8, 31))
    await add_pbb(db, year=year - 2, status="paid", due=date(year - 2, 8, 31))
    await add_pbb(db, year=year - 3, principal=100_000, due=date(year - 3, 8, 31))
    bank = http_client()

    status, _, body = await bank.pbb_inquiry(NOP_DISPLAY, year)
    assert status == 200 and body["response_code"] == "00" and body["amount"]["total"] == 150_000
    assert body["other_unpaid_years"] == [year - 3] and body["quote"]["total"] == 150_000
    status, _, late = await bank.pbb_inquiry(NOP, year - 3)
    assert status == 200 and late["response_code"] == "00" and late["amount"]["penalty"] > 0
    assert late["amount"]["months_late"] > 0
    status, _, body = await bank.pbb_inquiry(NOP, year - 1)
    assert status == 200 and body["response_code"] == "33" and body["bill"]["status"] == "cancelled"
    status, _, body = await bank.pbb_inquiry(NOP, year - 2)
    assert status == 200 and body["response_code"] == "88" and "ntpd" not in body
    status, _, body = await bank.pbb_inquiry(NOP, year - 4)
    assert status == 200 and body["response_code"] == "14" and "bill" not in body
    status, _, body = await bank.pbb_inquiry("317101000100100010", year)  # another region's NOP
    assert status == 200 and body["response_code"] == "14"
    status, _, body = await bank.pbb_inquiry("12345", year)
    assert status == 400 and body["response_code"] == "30"
    status, _, body = await bank.pbb_inquiry(NOP, "20x6")
    assert status == 400 and body["response_code"] == "30"

    status, _, body = await bank.call("GET", f"/v1/pbb/bills/{NOP}")
    assert status == 200 and body["response_code"] == "00"
    assert [line["bill"]["tax_year"] for line in body["bills"]] == [year, year - 1, year - 2, year - 3]
    assert body["total_due"] == 150_000 + late["amount"]["total"]
    status, _, body = await bank.call("GET", "/v1/pbb/bills/327501000100100099")
    assert status == 200 and body["response_code"] == "14"
    status, _, body = await bank.call("GET", "/v1/pbb/bills/3275")
    assert status == 400 and body["response_code"] == "30"


async def test_pbb_payment_status_receipt_proof_and_reversal(gateway, db, http_client):
    year = today().year
    await add_pbb(db, year=year, due=date(2099, 8, 31))
    await add_pbb(db, year=year - 1, principal=80_000, due=date(2099, 8, 31))
    bank = http_client()

    status, _, quote = await bank.pbb_inquiry(NOP, year)
    assert status == 200 and quote["response_code"] == "00"
    status, headers, paid = await bank.pbb_payment("pay-1", **pbb_payment())
    assert status == 200 and paid["response_code"] == "00" and "Idempotent-Replayed" not in headers
    ntpd = paid["ntpd"]
    assert paid["receipt_url"] == f"/v1/payments/{ntpd}/receipt.pdf" and paid["proof"]["ntpd"] == ntpd

    # Idempotency: the same key and body again, the same key with another body.
    status, headers, again = await bank.pbb_payment("pay-1", **pbb_payment())
    assert status == 200 and headers["Idempotent-Replayed"] == "true" and again == paid
    status, _, body = await bank.pbb_payment("pay-1", **pbb_payment(ntb="OTHER"))
    assert status == 422 and body["response_code"] == "94"

    # Business refusals are 200s.
    status, _, body = await bank.pbb_payment("pay-2", **pbb_payment())
    assert status == 200 and body["response_code"] == "88" and body["ntpd"] == ntpd
    status, _, body = await bank.pbb_payment("pay-3", **pbb_payment(tax_year=year - 1, amount=79_999))
    assert status == 200 and body["response_code"] == "13" and body["bill"]["tax_year"] == year - 1
    status, _, body = await bank.pbb_payment("pay-4", **pbb_payment(tax_year=year - 4))
    assert status == 200 and body["response_code"] == "14"
    status, _, body = await bank.pbb_inquiry(NOP, year)
    assert status == 200 and body["response_code"] == "88" and body["ntpd"] == ntpd
    assert body["amount"]["total"] == 0

    # The payment, its receipt and its public proof check.
    status, _, view = await bank.call("GET", f"/v1/payments/{ntpd}")
    assert status == 200 and view["status"] == "paid" and view["reversed_at"] is None
    assert view["validation_code"] == paid["validation_code"]
    status, headers, pdf = await bank.call("GET", f"/v1/payments/{ntpd}/receipt.pdf")
    assert status == 200 and pdf[:5] == b"%PDF-"
    anyone = http_client(secret="unused")
    code = paid["validation_code"]
    status, _, check = await anyone.call("GET", f"/v1/proofs/{ntpd}?code={code}", sign=False)
    assert status == 200 and check["status"] == "valid" and check["bill_masked"] == NOP[:12] + "******"
    assert check["taxpayer_masked"] == "S*** A*****" and check["total"] == 150_000
    status, _, check = await anyone.call("GET", f"/v1/proofs/{ntpd}?code=0000-0000-0000-0000", sign=False)
    assert status == 200 and check == {"status": "unknown", "ntpd": ntpd}
    status, _, check = await anyone.call("GET", "/v1/proofs/not-an-ntpd", sign=False)
    assert status == 200 and check["status"] == "unknown"

    # Reversals.
    status, _, body = await bank.reversal("rev-1", ntpd=ntpd, amount=1)
    assert status == 200 and body["response_code"] == "13" and body["amount"] == 150_000
    status, _, body = await bank.reversal("rev-2", ntpd=ntpd, amount=150_000, reason="customer cancelled")
    assert status == 200 and body["response_code"] == "00" and body["already_reversed"] is False
    status, headers, body = await bank.reversal("rev-2", ntpd=ntpd, amount=150_000, reason="customer cancelled")
    assert status == 200 and headers["Idempotent-Replayed"] == "true" and body["already_reversed"] is False
    status, _, body = await bank.reversal("rev-3", ntpd=ntpd, amount=150_000)
    assert status == 200 and body["response_code"] == "00" and body["already_reversed"] is True
    unknown = make_ntpd(today(), Tax.PBB, 999_999_999)
    status, _, body = await bank.reversal("rev-4", ntpd=unknown, amount=150_000)
    assert status == 200 and body["response_code"] == "14"
    status, _, body = await bank.reversal("rev-5", ntpd="12345", amount=150_000)
    assert status == 400 and body["response_code"] == "30"

    status, _, view = await bank.call("GET", f"/v1/payments/{ntpd}")
    assert status == 200 and view["status"] == "reversed" and view["reversed_at"]
    status, _, pdf = await bank.call("GET", f"/v1/payments/{ntpd}/receipt.pdf")
    assert status == 200
    status, _, check = await anyone.call("GET", f"/v1/proofs/{ntpd}?code={code}", sign=False)
    assert status == 200 and check["status"] == "reversed"
    for path in (f"/v1/payments/{unknown}", "/v1/payments/123", f"/v1/payments/{unknown}/receipt.pdf"):
        status, _, body = await bank.call("GET", path)
        assert status == 404 and "response_code" not in body, path


async def test_bphtb_inquiry_and_payment(gateway, db, http_client):
    year = today().year
    registration = await add_bphtb(db, serial=123, valid_until=date(2099, 12, 31), year=year)
    expired = await add_bphtb(db, serial=124, valid_until=date(2020, 1, 1), year=year, nop=NOP)
    bank = http_client()

    status, _, body = await bank.bphtb_inquiry(registration)
    assert status == 200 and body["response_code"] == "00" and body["bill"]["tax"] == "BPHTB"
    assert body["amount"] == no_relief(5_000_000, 0, 5_000_000)
    status, _, body = await bank.bphtb_inquiry(registration, nop=BPHTB_NOP, tax_year=year)
    assert status == 200 and body["response_code"] == "00"
    status, _, body = await bank.bphtb_inquiry(registration, tax_year=year - 1)
    assert status == 200 and body["response_code"] == "14"
    status, _, body = await bank.bphtb_inquiry(expired)
    assert status == 200 and body["response_code"] == "33"
    status, _, body = await bank.bphtb_inquiry(registration[:-1] + str((int(registration[-1]) + 1) % 10))
    assert status == 400 and body["response_code"] == "30"

    payment = {"registration_number": registration, "nop": BPHTB_NOP, "tax_year": year, "amount": 5_000_000,
               "ntb": "NTB0002", "channel": "internet"}
    status, _, body = await bank.bphtb_payment("b-1", **{**payment, "amount": 4_000_000})
    assert status == 200 and body["response_code"] == "13"
    status, _, paid = await bank.bphtb_payment("b-2", **payment)
    assert status == 200 and paid["response_code"] == "00" and paid["proof"]["nop"] == BPHTB_NOP
    status, _, body = await bank.bphtb_payment("b-3", **payment)
    assert status == 200 and body["response_code"] == "88"
    status, _, body = await bank.bphtb_inquiry(registration)
    assert status == 200 and body["response_code"] == "88" and body["ntpd"] == paid["ntpd"]
    status, _, view = await bank.call("GET", f"/v1/payments/{paid['ntpd']}")
    assert status == 200 and view["tax"] == "BPHTB" and view["bill_id"] == registration
    status, _, _ = await bank.call("GET", f"/v1/payments/{paid['ntpd']}/receipt.pdf")
    assert status == 200
    status, _, check = await bank.call("GET", f"/v1/proofs/{paid['ntpd']}?code={paid['validation_code']}",
                                       sign=False)
    assert status == 200 and check["status"] == "valid" and check["bill_masked"] == registration[:8] + "******"


async def test_malformed_requests_are_400(gateway, db, http_client):
    await add_pbb(db, year=today().year, due=date(2099, 8, 31))
    bank = http_client()
    cases = {
        "no key": dict(body=pbb_payment()),
        "key too long": dict(body=pbb_payment(), idempotency_key="k" * 65),
        "not JSON": dict(raw=b"{nop:", idempotency_key="m-1"),
        "not an object": dict(body=[pbb_payment()], idempotency_key="m-2"),
        "amount as a string": dict(body=pbb_payment(amount="150000"), idempotency_key="m-3"),
        "float amount": dict(raw=json.dumps(pbb_payment()).replace("150000", "150000.0").encode(),
                             idempotency_key="m-4"),
        "missing ntb": dict(body={k: v for k, v in pbb_payment().items() if k != "ntb"}, idempotency_key="m-5"),
        "unknown channel": dict(body=pbb_payment(channel="branch"), idempotency_key="m-6"),
        "negative amount": dict(body=pbb_payment(amount=-1), idempotency_key="m-7"),
        "bad NOP": dict(body=pbb_payment(nop="32750100010010001"), idempotency_key="m-8"),
    }
    for name, kw in cases.items():
        status, _, body = await bank.call("POST", "/v1/pbb/payments", **kw)
        assert status == 400 and body["response_code"] == "30", (name, body)
    status, _, body = await bank.call("POST", "/v1/bphtb/payments", {"amount": 1}, idempotency_key="m-9")
    assert status == 400 and body["response_code"] == "30"
    status, _, body = await bank.call("POST", "/v1/reversals", {"ntpd": 12}, idempotency_key="m-10")
    assert status == 400 and body["response_code"] == "30"


async def test_body_over_one_mib_is_413(gateway, http_client):
    bank = http_client()
    big = json.dumps({**pbb_payment(), "padding": "x" * (1024 * 1024)}).encode()
    status, _, body = await bank.call("POST", "/v1/pbb/payments", raw=big, idempotency_key="big")
    assert status == 413 and body["status"] == 413


async def test_bank_authentication_problems(gateway, db, http_client):
    path = f"/v1/pbb/bills/{NOP}/{today().year}"
    bank = http_client()
    status, _, body = await bank.call("GET", path, sign=False)
    assert status == 401 and "response_code" not in body
    status, _, body = await http_client(secret="wrong").call("GET", path)
    assert status == 401
    status, _, body = await http_client(bank="999").call("GET", path)
    assert status == 401
    status, _, body = await bank.call("GET", path, timestamp=int(time.time()) - 301)
    assert status == 401
    status, _, body = await bank.call("GET", path, nonce="nonce-used-once-0001")
    assert status == 200
    status, _, body = await bank.call("GET", path, nonce="nonce-used-once-0001")
    assert status == 401 and "replay" in body["detail"]
    status, _, body = await bank.call("GET", path, extra_headers={"X-Nonce": "short"})
    assert status == 401


def _banks_toml() -> str:
    def bank(code: str, **options) -> str:
        lines = ["[[banks]]", f'code = "{code}"', f'name = "BANK {code}"', f'api_secret = "secret-{code}"']
        options.setdefault("allow", ["127.0.0.1/32"])
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
        return "\n".join(lines) + "\n"

    # Banks sharing an address need listeners of their own on the ISO 8583 side.
    return (bank("110") + bank("120", iso_listen=f"127.0.0.1:{free_port()}") + bank("130", allow=["10.9.9.9/32"])
            + bank("140", taxes=["pbb"], iso_listen=f"127.0.0.1:{free_port()}"))


async def test_other_banks_forbidden_and_not_found(make_gateway, db, http_client):
    gw = make_gateway(banks=_banks_toml())
    year = today().year
    await add_pbb(db, year=year, due=date(2099, 8, 31))
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31), year=year)
    bank110 = http_client(gw=gw)
    bank120 = http_client(bank="120", secret="secret-120", gw=gw)
    outsider = http_client(bank="130", secret="secret-130", gw=gw)
    pbb_only = http_client(bank="140", secret="secret-140", gw=gw)

    status, _, body = await outsider.pbb_inquiry(NOP, year)
    assert status == 403 and body["response_code"] == "05"
    status, _, body = await pbb_only.bphtb_inquiry(registration)
    assert status == 403 and body["response_code"] == "05"
    status, _, body = await pbb_only.bphtb_payment("x-1", registration_number=registration, amount=5_000_000,
                                                   ntb="N1", channel="atm")
    assert status == 403 and body["response_code"] == "05"

    status, _, paid = await bank110.pbb_payment("p-1", **pbb_payment())
    assert status == 200 and paid["response_code"] == "00"
    status, _, body = await bank120.pbb_inquiry(NOP, year)
    assert status == 200 and body["response_code"] == "88" and "ntpd" not in body
    status, _, body = await bank120.reversal("r-1", ntpd=paid["ntpd"], amount=150_000)
    assert status == 200 and body["response_code"] == "12"
    for path in (f"/v1/payments/{paid['ntpd']}", f"/v1/payments/{paid['ntpd']}/receipt.pdf"):
        status, _, body = await bank120.call("GET", path)
        assert status == 404, path


async def test_closing_and_closed_business_date(gateway, db, http_client):
    year = today().year
    await add_pbb(db, year=year, due=date(2099, 8, 31))
    await add_pbb(db, year=year - 1, principal=80_000, due=date(2099, 8, 31))
    bank = http_client()
    status, _, paid = await bank.pbb_payment("p-1", **pbb_payment())
    assert status == 200 and paid["response_code"] == "00"
    day = date.fromisoformat(paid["business_date"])

    await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", day)
    status, _, body = await bank.pbb_inquiry(NOP, year - 1)
    assert status == 503 and body["response_code"] == "90"
    status, _, body = await bank.pbb_payment("p-2", **pbb_payment(tax_year=year - 1, amount=80_000))
    assert status == 503 and body["response_code"] == "90"
    status, _, body = await bank.reversal("r-1", ntpd=paid["ntpd"], amount=150_000)
    assert status == 503 and body["response_code"] == "90"

    await db.execute("UPDATE business_dates SET state = 'closed' WHERE business_date = $1", day)
    status, _, body = await bank.reversal("r-2", ntpd=paid["ntpd"], amount=150_000)
    assert status == 200 and body["response_code"] == "57" and body["amount"] == 150_000


async def test_concurrent_requests_with_one_key(gateway, db, http_client):
    await add_pbb(db, year=today().year, due=date(2099, 8, 31))
    bank = http_client()
    answers = await asyncio.gather(*(bank.pbb_payment("same-key", **pbb_payment()) for _ in range(6)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {200, 409}, statuses
    paid = [body for status, _, body in answers if status == 200]
    assert paid and {body["ntpd"] for body in paid} == {paid[0]["ntpd"]}
    assert sum(1 for status, headers, _ in answers if status == 200 and "Idempotent-Replayed" not in headers) == 1


async def test_proof_checks_are_rate_limited(gateway, http_client):
    anyone = http_client()
    ntpd = make_ntpd(today(), Tax.PBB, 1)
    for _ in range(80):
        status, headers, body = await anyone.call("GET", f"/v1/proofs/{ntpd}?code=0000-0000-0000-0000", sign=False)
        if status == 429:
            break
        assert status == 200 and body["status"] == "unknown"
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "response_code" not in body


async def test_the_check_fails_an_undocumented_answer(gateway):
    """The unknown route's 404 is a real answer the document does not describe: the check refuses it."""
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.http_url + "/v1/nothing-here") as resp:
            status, headers, body = resp.status, resp.headers.copy(), await resp.json(content_type=None)
    assert status == 404 and headers["Content-Type"].startswith("application/problem+json")
    assert headers["X-Request-Id"]
    with pytest.raises(AssertionError, match="matches no route"):
        assert_conforms("GET", "/v1/nothing-here", status, headers, body)


async def _raw_exchange(gw, head: bytes) -> tuple[int, dict[str, str], dict]:
    """Send ``head`` as it is (what no HTTP client would) and read the one answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    try:
        writer.write(head)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    raw_head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, json.loads(body)


async def test_parser_refusals_conform_on_any_route(gateway):
    """The HTTP parser's own refusals are documented answers of every route: a head over `max_head_bytes`
    is 431, bad bytes in the head 400 with RC 30."""
    big = b"X-Filler: " + b"a" * 4000 + b"\r\n"
    for path in (f"/v1/pbb/bills/{NOP}/2026", "/healthz", "/v1/staff/me"):
        status, headers, body = await _raw_exchange(
            gateway, f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + big * 3 + b"\r\n")
        assert status == 431 and "a" * 100 not in json.dumps(body), (path, body)
        assert_conforms("GET", path, status, headers, body)
        status, headers, body = await _raw_exchange(
            gateway, f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n".encode())
        assert status == 400 and body["response_code"] == "30", (path, body)
        assert_conforms("GET", path, status, headers, body)


async def test_staff_sign_in_limit_conforms(gateway):
    async with aiohttp.ClientSession() as session:
        for _ in range(8):
            async with session.post(gateway.http_url + "/v1/staff/session",
                                    json={"username": "nobody", "password": "wrong"}) as resp:
                status, headers, body = resp.status, resp.headers.copy(), await resp.json(content_type=None)
            assert_conforms("POST", "/v1/staff/session", status, headers, body)
            if status == 429:
                break
            assert status == 401
    assert status == 429 and int(headers["Retry-After"]) >= 1
