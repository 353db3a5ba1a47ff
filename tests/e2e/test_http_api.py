"""Every bank route of the JSON/HTTP API and every problem status of spec/http-api.md, over real HTTP.

Each test talks to a real ``gateway serve`` subprocess through signed requests (every answer checked
against the OpenAPI document by ``CheckedHttpClient``) and checks the exact HTTP status, the exact RC and
the rows left (or not left) in the database.
"""
from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from billdata import add_bphtb, add_pbb
from gateway.banksim.http_client import HttpBankClient
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd, parse_ntpd
from gateway.domain.sspd import make_registration
from helpers.dates import today
from helpers.db import bill_status, counts, poll_rows
from helpers.gateway import bank_toml, gateway_behind_proxy, start, two_banks, wait_http
from helpers.http import (
    BPHTB_NOP,
    FAR_DUE,
    NOP,
    PRINCIPAL,
    YEAR,
    assert_business,
    assert_problem,
    check_rfc3339_local,
    no_relief,
    pbb_body,
)

pytestmark = pytest.mark.integration

NOP_DISPLAY = "32.75.010.001.001-0001.0"
CODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


# -- helpers ---------------------------------------------------------------------------------------


def pbb_bill(year: int = YEAR, status: str = "unpaid", due: date = FAR_DUE, name: str = "SITI AMINAH") -> dict:
    return {"tax": "PBB", "nop": NOP, "nop_display": NOP_DISPLAY, "tax_year": year, "taxpayer_name": name,
            "object_address": "JL. MERDEKA NO. 1", "kelurahan": "MARGAHAYU", "kecamatan": "BEKASI TIMUR",
            "region": "KOTA BEKASI", "land_area": 120, "building_area": 90, "due_date": due.isoformat(),
            "status": status}


def bphtb_bill(registration: str, status: str = "unpaid", valid_until: date = date(2099, 12, 31)) -> dict:
    return {"tax": "BPHTB", "registration_number": registration, "nop": BPHTB_NOP,
            "nop_display": "32.75.010.001.001-0002.0", "tax_year": 2026, "taxpayer_name": "BUDI SANTOSO",
            "nik_masked": "327501******0004", "object_address": "JL. AHMAD YANI 5", "kelurahan": "MARGAHAYU",
            "kecamatan": "BEKASI TIMUR", "region": "KOTA BEKASI", "acquisition_type": 1,
            "acquisition_value": 180_000_000, "land_area": 200, "building_area": 150,
            "ppat_name": "NOTARIS RINA, S.H.", "valid_until": valid_until.isoformat(), "status": status}


# -- PBB -------------------------------------------------------------------------------------------


async def test_pbb_inquiry_arrears_payment_status_receipt(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, principal=140_000, status="paid", due=date(YEAR - 1, 8, 31))
    await add_pbb(db, year=YEAR - 2, principal=130_000, status="cancelled", due=date(YEAR - 2, 8, 31))
    # Due more than 24 months ago, before 2024: 2 % a month, capped at 24 months = 48 %.
    await add_pbb(db, year=YEAR - 3, principal=120_000, due=date(2023, 8, 31))
    await add_pbb(db, year=YEAR - 6, principal=110_000, due=date(YEAR - 6, 8, 31))  # outside the window
    bank = http_client()
    day = today().isoformat()

    # Inquiry, display-form NOP; the caller's request id is echoed.
    answer = await bank.call("GET", f"/v1/pbb/bills/{NOP_DISPLAY}/{YEAR}", extra_headers={"X-Request-Id": "rq-77"})
    assert answer[1]["X-Request-Id"] == "rq-77"
    body = assert_business(answer, "00")
    expires = check_rfc3339_local(body.pop("quote")["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15, seconds=5)
    assert body == {"response_code": "00", "message": "approved", "business_date": day, "bill": pbb_bill(),
                    "amount": no_relief(PRINCIPAL, 0, PRINCIPAL, 0),
                    "other_unpaid_years": [YEAR - 3]}
    (quote,) = await poll_rows(db, "SELECT bank_code, principal, penalty, total FROM quotes")
    assert tuple(quote) == ("110", PRINCIPAL, 0, PRINCIPAL)

    # The late year: penalty capped.
    body = assert_business(await bank.pbb_inquiry(NOP, YEAR - 3), "00")
    assert body["amount"] == no_relief(120_000, 57_600, 177_600, 24)
    assert body["quote"]["total"] == 177_600 and body["other_unpaid_years"] == [YEAR]

    # Paid (imported as paid: no NTPD), cancelled, unknown year, malformed NOP and year.
    body = assert_business(await bank.pbb_inquiry(NOP, YEAR - 1), "88")
    assert body["bill"]["status"] == "paid" and "ntpd" not in body and "quote" not in body
    assert body["amount"] == no_relief(140_000, 0, 0, 0)
    body = assert_business(await bank.pbb_inquiry(NOP, YEAR - 2), "33")
    assert body["bill"]["status"] == "cancelled" and "quote" not in body
    body = assert_business(await bank.pbb_inquiry(NOP, YEAR - 4), "14")
    assert set(body) == {"response_code", "message", "business_date"}
    assert_problem(await bank.pbb_inquiry("3275010001001000AB", YEAR), 400, "30")
    assert_problem(await bank.pbb_inquiry("32750100010010001", YEAR), 400, "30")
    assert_problem(await bank.pbb_inquiry(NOP, "20x6"), 400, "30")
    assert (await counts(db, ("quotes",)))["quotes"] == 2

    # Arrears: newest first, paid and cancelled years at 0, read-only.
    for nop in (NOP, NOP_DISPLAY):
        body = assert_business(await bank.call("GET", f"/v1/pbb/bills/{nop}"), "00")
        assert body == {
            "response_code": "00", "message": "approved", "business_date": day, "nop": NOP,
            "bills": [
                {"bill": pbb_bill(), "amount": no_relief(PRINCIPAL, 0, PRINCIPAL, 0)},
                {"bill": pbb_bill(YEAR - 1, "paid", date(YEAR - 1, 8, 31)),
                 "amount": no_relief(140_000, 0, 0, 0)},
                {"bill": pbb_bill(YEAR - 2, "cancelled", date(YEAR - 2, 8, 31)),
                 "amount": no_relief(130_000, 0, 0, 0)},
                {"bill": pbb_bill(YEAR - 3, due=date(2023, 8, 31)),
                 "amount": no_relief(120_000, 57_600, 177_600, 24)},
            ],
            "total_due": PRINCIPAL + 177_600}
    body = assert_business(await bank.call("GET", "/v1/pbb/bills/327501000100100099"), "14")
    assert "bills" not in body
    assert_problem(await bank.call("GET", "/v1/pbb/bills/32750100010010009X"), 400, "30")
    assert (await counts(db, ("quotes",)))["quotes"] == 2  # arrears records no quote

    # Payment.
    answer = await bank.pbb_payment("pay-1", **pbb_body(ntb="ABC123", terminal_id="TLR0001"))
    paid = assert_business(answer, "00")
    ntpd = paid["ntpd"]
    assert parse_ntpd(ntpd) == ntpd and ntpd[:6] == today().strftime("%y%m%d") and ntpd[6] == "1"
    assert CODE_RE.match(paid["validation_code"]), paid["validation_code"]
    assert set(paid) == {"response_code", "message", "business_date", "ntpd", "validation_code", "bill", "amount",
                         "proof", "signature", "kid", "receipt_url"}
    assert (paid["business_date"], paid["bill"], paid["amount"], paid["receipt_url"]) == (
        day, pbb_bill(status="paid"), no_relief(PRINCIPAL, 0, PRINCIPAL),
        f"/v1/payments/{ntpd}/receipt.pdf")
    proof = paid["proof"]
    assert (proof["ntpd"], proof["tax"], proof["bill"], proof["tax_year"], proof["total"], proof["bank"],
            proof["channel"], proof["ntb"], proof["kid"]) == (
        ntpd, "PBB", NOP, YEAR, PRINCIPAL, "110", "teller", "ABC123", paid["kid"])
    row = await db.fetchrow("SELECT * FROM payments")
    assert (row["ntpd"], row["tax"], row["bank_code"], row["channel"], row["via"], row["ntb"], row["terminal_id"],
            row["stan"], row["principal"], row["penalty"], row["total"], row["business_date"]) == (
        ntpd, "PBB", "110", "teller", "http", "ABC123", "TLR0001", None, PRINCIPAL, 0, PRINCIPAL, today())
    keys = await db.fetch("SELECT channel, bank_code, key, operation FROM message_keys")
    assert [tuple(k) for k in keys] == [("http", "110", "pay-1", "pbb-payment")]
    assert await bill_status(db, "PBB", NOP + str(YEAR)) == "paid"

    # After payment: inquiry 88 with the NTPD (same bank); a second payment 88; a wrong amount 13.
    body = assert_business(await bank.pbb_inquiry(NOP, YEAR), "88")
    assert body["ntpd"] == ntpd and body["amount"]["total"] == 0
    body = assert_business(await bank.pbb_payment("pay-2", **pbb_body()), "88")
    assert body["ntpd"] == ntpd and "validation_code" not in body and "proof" not in body
    body = assert_business(await bank.pbb_payment("pay-3", **pbb_body(177_599, year=YEAR - 3)), "13")
    assert "ntpd" not in body and "proof" not in body
    body = assert_business(await bank.pbb_payment("pay-4", **pbb_body(year=YEAR - 2)), "33")
    body = assert_business(await bank.pbb_payment("pay-5", **pbb_body(year=YEAR - 4)), "14")
    assert "ntpd" not in body

    # The bank's own payment, and its receipt.
    status, _, view = await bank.call("GET", f"/v1/payments/{ntpd}")
    assert status == 200
    assert check_rfc3339_local(view["paid_at"])
    assert {k: view[k] for k in ("ntpd", "status", "tax", "bill_id", "tax_year", "business_date", "reversed_at",
                                 "amount", "channel", "ntb", "proof", "signature", "kid", "validation_code")} == {
        "ntpd": ntpd, "status": "paid", "tax": "PBB", "bill_id": NOP + str(YEAR), "tax_year": YEAR,
        "business_date": day, "reversed_at": None,
        "amount": no_relief(PRINCIPAL, 0, PRINCIPAL), "channel": "teller",
        "ntb": "ABC123", "proof": paid["proof"], "signature": paid["signature"], "kid": paid["kid"],
        "validation_code": paid["validation_code"]}
    status, headers, pdf = await bank.call("GET", f"/v1/payments/{ntpd}/receipt.pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf[:5] == b"%PDF-"
    assert_problem(await bank.call("GET", "/v1/payments/not-an-ntpd"), 404)
    assert_problem(await bank.call("GET", "/v1/payments/not-an-ntpd/receipt.pdf"), 404)

    c = await counts(db)
    assert (c["payments"], c["active_payments"], c["proofs"], c["message_keys"]) == (1, 1, 1, 5)

    # Every request and answer of the bank routes is in the message log (written in batches).
    for _ in range(100):
        logged = await db.fetch("SELECT direction, channel, bank_code, response_code, message_key FROM message_log"
                                " WHERE connection_id = 'rq-77' OR message_key = 'pay-1' ORDER BY logged_at, id")
        if len(logged) >= 4:
            break
        await asyncio.sleep(0.05)
    assert [tuple(r) for r in logged] == [("in", "http", "110", None, None), ("out", "http", "110", "00", None),
                                          ("in", "http", "110", None, "pay-1"), ("out", "http", "110", "00", "pay-1")]


# -- BPHTB -----------------------------------------------------------------------------------------


async def test_bphtb_inquiry_cross_check_and_payment(gateway, db, http_client):
    registration = await add_bphtb(db, principal=5_000_000, penalty=100_000, valid_until=date(2099, 12, 31))
    expired = await add_bphtb(db, serial=124, valid_until=today() - timedelta(days=1), nop="327501000100100030")
    bank = http_client()
    amount = no_relief(5_000_000, 100_000, 5_100_000)

    body = assert_business(await bank.bphtb_inquiry(registration), "00")
    check_rfc3339_local(body.pop("quote")["expires_at"])
    assert body.pop("other_unpaid_years", []) == []
    assert body == {"response_code": "00", "message": "approved", "business_date": today().isoformat(),
                    "bill": bphtb_bill(registration), "amount": amount}
    for query in ({"nop": BPHTB_NOP, "tax_year": 2026}, {"nop": "32.75.010.001.001-0002.0"}, {"tax_year": 2026}):
        assert assert_business(await bank.bphtb_inquiry(registration, **query), "00")["amount"] == amount, query
    for query in ({"nop": NOP}, {"tax_year": 2025}, {"nop": BPHTB_NOP, "tax_year": 2025},
                  {"nop": "327601000100100020"}):
        body = assert_business(await bank.bphtb_inquiry(registration, **query), "14")
        assert "bill" not in body and "amount" not in body, query
    assert_problem(await bank.bphtb_inquiry(registration, nop="12345"), 400, "30")
    assert_problem(await bank.bphtb_inquiry(registration, tax_year="abcd"), 400, "30")
    bad_check = registration[:-2] + f"{(int(registration[-2:]) + 1) % 100:02d}"
    assert_problem(await bank.bphtb_inquiry(bad_check), 400, "30")
    assert_business(await bank.bphtb_inquiry(make_registration(2026, 11, 999)), "14")
    body = assert_business(await bank.bphtb_inquiry(expired), "33")
    assert body["bill"]["status"] == "unpaid"
    assert (await counts(db, ("quotes",)))["quotes"] == 4

    pay = {"registration_number": registration, "amount": 5_100_000, "ntb": "B-1", "channel": "internet"}
    assert_business(await bank.bphtb_payment("b-1", **pay, nop=NOP), "14")
    assert_business(await bank.bphtb_payment("b-2", **pay, tax_year=2025), "14")
    assert_business(await bank.bphtb_payment("b-3", **dict(pay, amount=5_000_000)), "13")
    assert_business(await bank.bphtb_payment("b-4", **dict(pay, registration_number=expired, amount=5_000_000)),
                    "33")
    assert (await counts(db))["payments"] == 0
    paid = assert_business(await bank.bphtb_payment("b-5", **pay, nop=BPHTB_NOP, tax_year=2026), "00")
    ntpd = paid["ntpd"]
    assert ntpd[6] == "2" and paid["amount"] == amount and paid["bill"] == bphtb_bill(registration, "paid")
    proof = paid["proof"]
    assert (proof["tax"], proof["bill"], proof["nop"], proof["principal"], proof["penalty"], proof["total"],
            proof["channel"]) == ("BPHTB", registration, BPHTB_NOP, 5_000_000, 100_000, 5_100_000, "internet")
    body = assert_business(await bank.bphtb_inquiry(registration), "88")
    assert body["ntpd"] == ntpd and body["amount"] == no_relief(5_000_000, 0, 0)
    assert_business(await bank.bphtb_payment("b-6", **pay), "88")
    row = await db.fetchrow("SELECT ntpd, tax, via, channel, principal, penalty, total FROM payments")
    assert tuple(row) == (ntpd, "BPHTB", "http", "internet", 5_000_000, 100_000, 5_100_000)
    assert await bill_status(db, "BPHTB", registration) == "paid"


# -- reversals -------------------------------------------------------------------------------------


async def test_reversal_rules(make_gateway, db, http_client):
    gw = await two_banks(make_gateway)
    await add_pbb(db, due=FAR_DUE)
    b110, b120 = http_client(gw=gw), http_client("120", "secret-120", gw=gw)
    ntpd = assert_business(await b110.pbb_payment("p1", **pbb_body()), "00")["ntpd"]

    # Another bank's payment: 12, and it cannot see it.
    body = assert_business(await b120.reversal("r1", ntpd=ntpd, amount=PRINCIPAL, reason="x"), "12")
    assert "amount" not in body and "ntpd" not in body
    assert_problem(await b120.call("GET", f"/v1/payments/{ntpd}"), 404)
    assert_problem(await b120.call("GET", f"/v1/payments/{ntpd}/receipt.pdf"), 404)
    # Amount differs: 13, with the payment's amount.
    for key, amount in (("r2", PRINCIPAL + 1), ("r3", PRINCIPAL - 1)):
        body = assert_business(await b110.reversal(key, ntpd=ntpd, amount=amount), "13")
        assert body["amount"] == PRINCIPAL and body["ntpd"] == ntpd
    # Unknown NTPD: 14, no tombstone; malformed NTPD or amount: 400/30.
    unknown = make_ntpd(today(), Tax.PBB, 424242)
    body = assert_business(await b110.reversal("r4", ntpd=unknown, amount=PRINCIPAL), "14")
    assert body.get("ntpd") in (None, unknown)
    assert_problem(await b110.reversal("r5", ntpd="123", amount=PRINCIPAL), 400, "30")
    assert_problem(await b110.reversal("r6", ntpd=ntpd, amount=str(PRINCIPAL)), 400, "30")
    assert_problem(await b110.reversal("r7", ntpd=ntpd), 400, "30")
    c = await counts(db)
    assert (c["reversals"], c["tombstones"], c["active_payments"]) == (0, 0, 1)

    body = assert_business(await b110.reversal("r8", ntpd=ntpd, amount=PRINCIPAL, reason="cancelled"), "00")
    assert (body["ntpd"], body["amount"], body["already_reversed"]) == (ntpd, PRINCIPAL, False)
    body = assert_business(await b110.reversal("r9", ntpd=ntpd, amount=PRINCIPAL), "00")
    assert body["already_reversed"] is True
    row = await db.fetchrow("SELECT r.bank_code, r.amount, r.via, r.reason, p.ntpd FROM reversals r"
                            " JOIN payments p ON p.id = r.payment_id")
    assert tuple(row) == ("110", PRINCIPAL, "http", "cancelled", ntpd)
    assert await bill_status(db, "PBB", NOP + str(YEAR)) == "unpaid"
    status, _, view = await b110.call("GET", f"/v1/payments/{ntpd}")
    assert status == 200 and view["status"] == "reversed" and check_rfc3339_local(view["reversed_at"])

    # Paid again (a new payment), then its business date closed: 57.
    ntpd2 = assert_business(await b110.pbb_payment("p2", **pbb_body(ntb="NTB-2")), "00")["ntpd"]
    assert ntpd2 != ntpd
    assert await db.execute("UPDATE business_dates SET state = 'closed' WHERE business_date = $1",
                            today()) == "UPDATE 1"
    body = assert_business(await b110.reversal("r10", ntpd=ntpd2, amount=PRINCIPAL), "57")
    assert body["ntpd"] == ntpd2
    c = await counts(db)
    assert (c["payments"], c["reversals"], c["active_payments"]) == (2, 1, 1)
    assert await bill_status(db, "PBB", NOP + str(YEAR)) == "paid"


# -- problem statuses ------------------------------------------------------------------------------


async def test_400_malformed_requests_store_nothing(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    bank = http_client()
    path = "/v1/pbb/payments"
    raws = (b"{not json", b"[1, 2]", b'"text"', b"", b'{"nop": "\xff"}', b"\xff\xfe{}", b"null",
            b'{"amount": 1' + b"0" * 5000 + b"}", b'{"a":' * 100_000, b"[" * 100_000)  # too deep for json
    for n, raw in enumerate(raws):
        assert_problem(await bank.call("POST", path, raw=raw, idempotency_key=f"raw-{n}"), 400, "30")
    good = pbb_body()
    cases = [{k: v for k, v in good.items() if k != name} for name in good]  # each field missing
    cases += [dict(good, **{name: None}) for name in good]
    cases += [
        dict(good, nop="3275010001001000AB"), dict(good, nop="32750100010010001"), dict(good, nop=327501000100100010),
        dict(good, amount=str(PRINCIPAL)), dict(good, amount=float(PRINCIPAL)), dict(good, amount=True),
        dict(good, amount=-PRINCIPAL), dict(good, tax_year="20x6"), dict(good, tax_year=26.0),
        dict(good, channel="bogus"), dict(good, channel="TELLER"), dict(good, channel="6010"),
        dict(good, ntb=""), dict(good, ntb="N" * 33), dict(good, terminal_id=7),
    ]
    for n, case in enumerate(cases):
        answer = await bank.call("POST", path, case, idempotency_key=f"case-{n}")
        assert_problem(answer, 400, "30")
    bphtb = {"registration_number": "2026110001235", "amount": 1, "ntb": "X", "channel": "atm"}
    assert_problem(await bank.bphtb_payment("bp-1", **bphtb), 400, "30")
    assert_problem(await bank.bphtb_payment("bp-2", **dict(bphtb, registration_number=None)), 400, "30")
    c = await counts(db)
    assert (c["payments"], c["message_keys"], c["quotes"]) == (0, 0, 0)
    # None of those keys was consumed: the same key with a good body pays.
    assert_business(await bank.pbb_payment("case-0", **good), "00")


async def test_401_404_405_413(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    bank = http_client()
    assert_problem(await bank.call("GET", f"/v1/pbb/bills/{NOP}/{YEAR}", sign=False), 401)
    assert_problem(await bank.call("POST", "/v1/pbb/payments", pbb_body(), sign=False, idempotency_key="u1"), 401)
    # Routes the OpenAPI document does not have cannot be checked against it: a plain client.
    async with HttpBankClient(gateway.http_url, "110", "secret-110") as plain:
        for answer in (await plain.call("GET", "/v1/nothing-here", sign=False),
                       await plain.call("GET", "/nothing", sign=False),
                       await plain.call("GET", f"/v1/pbb/bills/{NOP}/{YEAR}/extra"),  # signed, unknown route
                       await plain.call("GET", "/v1/payments")):
            assert_problem(answer, 404)
            assert answer[1]["X-Request-Id"]
        answer = await plain.call("DELETE", "/v1/pbb/payments")
        assert answer[0] == 405 and answer[1]["Content-Type"].startswith("application/problem+json"), answer
    # Over 1 MiB: 413. Exactly 1 MiB is read (and then judged on its content).
    limit = 1024 * 1024
    big = json.dumps(pbb_body()).encode()
    over = big[:-1] + b" " * (limit + 1 - len(big)) + b"}"
    assert len(over) == limit + 1
    assert_problem(await bank.call("POST", "/v1/pbb/payments", raw=over, idempotency_key="big"), 413)
    exact = over[:-2] + b"}"
    assert len(exact) == limit
    assert_business(await bank.call("POST", "/v1/pbb/payments", raw=exact, idempotency_key="big"), "00")
    assert (await counts(db))["payments"] == 1


async def test_403_allow_list_and_tax_not_enabled(make_gateway, db, http_client):
    banks = (bank_toml("110", "secret-110", taxes=["pbb"])
             + bank_toml("120", "secret-120", allow=("10.9.9.9/32",)))
    gw = await start(make_gateway, banks=banks)
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31))
    await add_pbb(db, due=FAR_DUE)
    b110, b120 = http_client(gw=gw), http_client("120", "secret-120", gw=gw)
    # Outside the allow list: 403/05 before anything else, even with a wrong or no signature.
    assert_problem(await b120.pbb_inquiry(NOP, YEAR), 403, "05")
    assert_problem(await b120.pbb_payment("k", **pbb_body()), 403, "05")
    assert_problem(await http_client("120", "wrong", gw=gw).pbb_inquiry(NOP, YEAR), 403, "05")
    assert_problem(await b120.call("GET", "/v1/pbb/bills/x", extra_headers={"X-Bank-Code": "120"}, sign=False),
                   403, "05")
    # A tax the bank may not collect: 403/05.
    assert_problem(await b110.bphtb_inquiry(registration), 403, "05")
    pay = {"registration_number": registration, "amount": 5_000_000, "ntb": "N", "channel": "atm"}
    assert_problem(await b110.bphtb_payment("bp", **pay), 403, "05")
    c = await counts(db)
    assert (c["payments"], c["message_keys"], c["quotes"]) == (0, 0, 0)
    assert await db.fetchval("SELECT count(*) FROM http_nonces WHERE bank_code = '120'") == 0
    assert_business(await b110.pbb_inquiry(NOP, YEAR), "00")


async def test_503_90_while_the_date_is_closing(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31))
    bank = http_client()
    ntpd = assert_business(await bank.pbb_payment("p0", **pbb_body(year=YEAR)), "00")["ntpd"]
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", today())
    before = await counts(db)
    assert_problem(await bank.pbb_inquiry(NOP, YEAR - 1), 503, "90")
    assert_problem(await bank.bphtb_inquiry(registration), 503, "90")
    assert_problem(await bank.pbb_payment("p1", **pbb_body(year=YEAR - 1)), 503, "90")
    assert_problem(await bank.reversal("r1", ntpd=ntpd, amount=PRINCIPAL), 503, "90")
    after = await counts(db)
    assert {k: after[k] - before[k] for k in after} == dict.fromkeys(after, 0) | {"http_nonces": 4}
    await db.execute("UPDATE business_dates SET state = 'open' WHERE business_date = $1", today())
    # The same requests, same keys: processed afresh (nothing was stored under them).
    assert_business(await bank.pbb_payment("p1", **pbb_body(year=YEAR - 1)), "00")
    assert_business(await bank.reversal("r1", ntpd=ntpd, amount=PRINCIPAL), "00")
    c = await counts(db)
    assert (c["payments"], c["reversals"], c["message_keys"]) == (2, 1, 3)


async def test_503_91_database_unreachable(make_gateway, db_url, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    gw, proxy = await gateway_behind_proxy(make_gateway, db_url)
    try:
        await wait_http(gw)
        bank = http_client(gw=gw)
        assert_business(await bank.pbb_inquiry(NOP, YEAR), "00")
        await proxy.cut()
        assert_problem(await bank.pbb_inquiry(NOP, YEAR), 503, "91")
        assert_problem(await bank.pbb_payment("p1", **pbb_body()), 503, "91")
        status, _, ready = await bank.call("GET", "/readyz", sign=False)
        assert status == 503 and ready["database"] == "unreachable"
        assert (await bank.call("GET", "/healthz", sign=False))[0] == 200
        assert gw.proc.poll() is None
        await proxy.start()
        paid = assert_business(await bank.pbb_payment("p1", **pbb_body()), "00")  # same key: afresh
    finally:
        if proxy.server is not None:
            await proxy.cut()
        gw.stop()
    rows = await db.fetch("SELECT ntpd FROM payments")
    assert [r["ntpd"] for r in rows] == [paid["ntpd"]]
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 1


async def test_500_96_internal_failure(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    await db.execute(f"""
        CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF (SELECT tax_year FROM bills WHERE id = NEW.bill_id) = {YEAR} THEN
                  RAISE EXCEPTION 'internal failure' USING ERRCODE = 'XX000'; END IF;
              RETURN NEW; END $$;
        CREATE TRIGGER test_boom BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION test_boom();
    """)
    bank = http_client()
    assert_problem(await bank.pbb_payment("boom", **pbb_body()), 500, "96")
    assert gateway.proc.poll() is None
    assert_business(await bank.pbb_payment("fine", **pbb_body(year=YEAR - 1)), "00")
    c = await counts(db)
    assert (c["payments"], c["message_keys"]) == (1, 1)


# -- idempotency -----------------------------------------------------------------------------------


async def test_idempotency_replay_conflict_and_key_format(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    bank = http_client()
    first = await bank.pbb_payment("K-1", **pbb_body())
    body = assert_business(first, "00")
    replay = await bank.pbb_payment("K-1", **pbb_body())
    assert_business(replay, "00", replayed=True)
    assert replay[2] == body
    # Same key, different request: 422/94 (other body, other route).
    assert_problem(await bank.pbb_payment("K-1", **pbb_body(ntb="OTHER")), 422, "94")
    assert_problem(await bank.pbb_payment("K-1", **pbb_body(year=YEAR - 1)), 422, "94")
    assert_problem(await bank.reversal("K-1", ntpd=body["ntpd"], amount=PRINCIPAL), 422, "94")
    # A refused payment (13) is replayed as well.
    refused = assert_business(await bank.pbb_payment("K-2", **pbb_body(1, year=YEAR - 1)), "13")
    again = await bank.pbb_payment("K-2", **pbb_body(1, year=YEAR - 1))
    assert assert_business(again, "13", replayed=True) == refused
    # Reversal replay.
    rev = assert_business(await bank.reversal("R-1", ntpd=body["ntpd"], amount=PRINCIPAL), "00")
    assert assert_business(await bank.reversal("R-1", ntpd=body["ntpd"], amount=PRINCIPAL), "00",
                           replayed=True) == rev
    # Missing or malformed keys: 400/30.
    for key in (None, "", "has space", "x" * 65, "tab\tkey"):
        for path, payload in (("/v1/pbb/payments", pbb_body(year=YEAR - 1)),
                              ("/v1/bphtb/payments", {"registration_number": make_registration(2026, 11, 5),
                                                      "amount": 1, "ntb": "N", "channel": "atm"}),
                              ("/v1/reversals", {"ntpd": body["ntpd"], "amount": PRINCIPAL})):
            assert_problem(await bank.call("POST", path, payload, idempotency_key=key), 400, "30")
    assert_business(await bank.pbb_payment("~" + "x" * 63, **pbb_body(year=YEAR - 1)), "00")  # 64 visible chars
    c = await counts(db)
    assert (c["payments"], c["reversals"]) == (2, 1)
    keys = await db.fetch("SELECT channel, key, operation FROM message_keys ORDER BY id")
    assert [tuple(k) for k in keys] == [("http", "K-1", "pbb-payment"), ("http", "K-2", "pbb-payment"),
                                        ("http", "R-1", "reversal"), ("http", "~" + "x" * 63, "pbb-payment")]
    assert await db.fetchval("SELECT count(*) FROM payments WHERE ntpd = $1", body["ntpd"]) == 1


async def test_concurrent_same_key_pays_once(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    clients = [http_client() for _ in range(10)]  # ten connections
    answers = await asyncio.gather(*(c.pbb_payment("SAME", **pbb_body()) for c in clients))
    originals = [a for a in answers if a[0] == 200 and "Idempotent-Replayed" not in a[1]]
    replays = [a for a in answers if a[0] == 200 and a[1].get("Idempotent-Replayed") == "true"]
    conflicts = [a for a in answers if a[0] == 409]
    assert len(originals) == 1 and len(originals) + len(replays) + len(conflicts) == 10, [a[0] for a in answers]
    for answer in conflicts:
        assert_problem(answer, 409)
    body = assert_business(originals[0], "00")
    assert all(r[2] == body for r in replays)
    # Ten different keys for one bill: one payment, nine RC 88.
    answers = await asyncio.gather(*(c.pbb_payment(f"K{n}", **pbb_body(year=YEAR - 1))
                                     for n, c in enumerate(clients)))
    rcs = sorted(assert_business(a, a[2].get("response_code"))["response_code"] for a in answers)
    assert rcs == ["00"] + ["88"] * 9
    c = await counts(db)
    assert (c["payments"], c["active_payments"], c["message_keys"]) == (2, 2, 11)
    same = await db.fetch("SELECT channel, bank_code FROM message_keys WHERE key = 'SAME'")
    assert [tuple(r) for r in same] == [("http", "110")]
    assert await db.fetchval("SELECT count(*) FROM payments WHERE ntpd = $1", body["ntpd"]) == 1


async def test_unauthenticated_requests_cannot_create_metric_series(gateway, http_client):
    anyone = http_client(secret="unused")
    async with HttpBankClient(gateway.http_url, "110", "secret-110") as plain:
        for n in range(40):
            assert (await plain.call("GET", f"/v1/pbb/no/such/route/{n}", sign=False))[0] == 401
            headers = {"X-Bank-Code": f"9{n:04d}"}
            assert (await plain.call("GET", f"/v1/pbb/bills/{NOP}/{YEAR}", sign=False, extra_headers=headers))[0] == 401
    status, _, text = await anyone.call("GET", "/metrics", sign=False)
    assert status == 200
    lines = [line for line in (text.decode() if isinstance(text, bytes) else text).splitlines()
             if line.startswith(("gateway_messages_total{", "gateway_request_seconds_count{"))
             and 'channel="http"' in line]
    assert len(lines) <= 10, "\n".join(lines[:20])


async def test_a_replay_is_byte_for_byte_the_first_answer(gateway, db, http_client):
    """http-api.md "Idempotency": only Date, X-Request-Id and the added Idempotent-Replayed differ. The proof
    inside the answer must keep its members' order too (the stored answer is kept as written)."""
    await add_pbb(db, due=FAR_DUE)
    client = http_client()
    data = json.dumps(pbb_body()).encode()

    async def post() -> tuple[int, dict, bytes]:
        headers = client.headers("POST", "/v1/pbb/payments", data)
        headers.update({"Content-Type": "application/json", "Idempotency-Key": "REPLAY-1"})
        async with client.session.post(gateway.http_url + "/v1/pbb/payments", data=data, headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.read()

    first = await post()
    replay = await post()
    assert first[0] == replay[0] == 200
    assert json.loads(first[2])["response_code"] == "00"
    assert "Idempotent-Replayed" not in first[1] and replay[1]["Idempotent-Replayed"] == "true"
    assert replay[2] == first[2]
