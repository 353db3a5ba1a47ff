"""Closing a business date through the staff API of running gateways (spec/operations.md "Settlement").

Gateway A runs with a `[testing]` clock two days back, so its payments belong to a past business date D;
gateway B, on the real clock, is past D's cut-off and closes it. Both share one database.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest

from billdata import add_pbb
from gateway.banksim.http_client import HttpBankClient
from helpers.staff import add_user, call, sign_in, token_for

pytestmark = pytest.mark.integration

NOPS = [f"3275010001001{i:04d}0" for i in range(1, 6)]
OFFSET_S = -2 * 86400
BANKS = """
[[banks]]
code = "110"
name = "BANK PEMBANGUNAN DAERAH"
allow = ["127.0.0.1/32"]
api_secret = "secret-110"
"""


def past_day() -> dt.date:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=OFFSET_S)
    local = now.astimezone(ZoneInfo("Asia/Jakarta"))
    return local.date() + dt.timedelta(days=1) if local.hour >= 23 else local.date()


async def test_close_a_past_day_with_roles_audit_90_and_57(make_gateway, db, db_url):
    day = past_day()
    past = make_gateway(banks=BANKS, extra="", env={"GATEWAY_TESTING_ENABLED": "true",
                                                    "GATEWAY_TESTING_CLOCK_OFFSET_SECONDS": str(OFFSET_S)})
    today = make_gateway(banks=BANKS)
    for nop in NOPS:
        await add_pbb(db, nop=nop, year=2026, due=dt.date(2099, 8, 31), principal=100_000)
    add_user(today, "siti", "treasury")
    add_user(today, "budi", "support")

    # Payments on D: two over ISO 8583, two over HTTP, one of them reversed.
    answered = []
    async with past.client() as iso:
        for nop in NOPS[:2]:
            a = await iso.request(iso.payment("pbb", nop + "2026", 100_000))
            assert a["39"] == "00" and a["15"] == day.strftime("%m%d")
            answered.append(a)
    async with HttpBankClient(past.http_url, "110", "secret-110") as bank:
        ntpds = []
        for i, nop in enumerate(NOPS[2:4]):
            status, _, body = await bank.pbb_payment(f"k{i}", nop=nop, tax_year=2026, amount=100_000, ntb=f"N{i}",
                                                     channel="teller")
            assert status == 200 and body["response_code"] == "00" and body["business_date"] == day.isoformat()
            ntpds.append(body["ntpd"])
        status, _, rev = await bank.reversal("r0", ntpd=ntpds[1], amount=100_000)
        assert rev["response_code"] == "00"
    independent = await db.fetchval(
        "SELECT sum(p.total) FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id"
        " WHERE r.id IS NULL AND p.business_date = $1", day)
    assert independent == 300_000

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        path = f"/v1/settlements/{day.isoformat()}/close"
        # Roles: support reads but cannot close; a bank's signature is no staff credential.
        support = {"Authorization": f"Bearer {token_for(today, 'budi')}"}
        status, _, body = await call(http, today, "POST", path, headers=support)
        assert (status, body["response_code"]) == (403, "05")
        async with HttpBankClient(today.http_url, "110", "secret-110") as bank:
            status, _, _ = await bank.call("GET", f"/v1/settlements/{day.isoformat()}")
            assert status == 401
        # A session without its CSRF token cannot close.
        cookie, csrf = await sign_in(http, today, "siti")
        session = {"Cookie": f"gw_session={cookie.value}"}
        status, _, _ = await call(http, today, "POST", path, headers=session)
        assert status == 403
        assert await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", day) == "open"

        # A corrupted ledger row aborts the close and leaves the date open.
        await db.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only")
        await db.execute("UPDATE ledger_entries SET amount = amount + 1 WHERE id = (SELECT min(id) FROM ledger_entries"
                         " WHERE account = 'bank' AND business_date = $1)", day)
        status, _, body = await call(http, today, "POST", path, headers={**session, "X-CSRF-Token": csrf})
        assert status == 409 and "net amount" in body["detail"]
        assert await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", day) == "open"
        await db.execute("UPDATE ledger_entries SET amount = amount - 1 WHERE id = (SELECT min(id) FROM ledger_entries"
                         " WHERE account = 'bank' AND business_date = $1)", day)
        await db.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only")

        # A slow close: the conservation check waits on a lock of the ledger; meanwhile D is 'closing' and a
        # payment of D gets RC 90 on ISO 8583 and 503/90 over HTTP.
        locker = await asyncpg.connect(db_url)
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
        closing = asyncio.ensure_future(call(http, today, "POST", path, headers={**session, "X-CSRF-Token": csrf}))
        for _ in range(200):
            if await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", day) == "closing":
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", day) == "closing"
        async with past.client() as iso:
            a = await iso.request(iso.payment("pbb", NOPS[4] + "2026", 100_000))
            assert a["39"] == "90"
        async with HttpBankClient(past.http_url, "110", "secret-110") as bank:
            status, _, body = await bank.pbb_payment("k9", nop=NOPS[4], tax_year=2026, amount=100_000, ntb="N9",
                                                     channel="teller")
            assert (status, body["response_code"]) == (503, "90")
        await tx.rollback()
        await locker.close()
        status, _, closed = await closing
        assert status == 200 and closed["status"] == "closed" and closed["closed_by"] == "siti"
        assert closed["total"]["net_amount"] == independent and closed["total"]["payments_count"] == 4
        assert closed["total"]["reversals_count"] == 1

        # After the close, reversals of D's payments get 57 on both channels.
        async with past.client() as iso:
            original = iso.payment("pbb", NOPS[0] + "2026", 100_000)
            rev = iso.reversal(original, ntpd=answered[0]["47"])
            assert (await iso.request(rev))["39"] == "57"
        async with HttpBankClient(past.http_url, "110", "secret-110") as bank:
            status, _, body = await bank.reversal("r1", ntpd=ntpds[0], amount=100_000)
            assert (status, body["response_code"]) == (200, "57")
        assert await db.fetchval("SELECT count(*) FROM reversals") == 1

        # Reports for the treasury.
        status, _, _ = await call(http, today, "GET", f"/v1/settlements/{day.isoformat()}", headers=support)
        assert status == 200
        async with http.get(today.http_url + f"/v1/settlements/{day.isoformat()}/report.pdf", headers=support) as r:
            assert r.status == 200 and (await r.read())[:5] == b"%PDF-"

        # Reconciliation upload: a bank file listing nothing → the three active payments are missing_at_bank.
        treasury = {"Authorization": f"Bearer {token_for(today, 'siti')}", "Content-Type": "text/csv"}
        header = ("business_date,bank_code,ntpd,ntb,rrn,stan,transmission_datetime,tax,bill_id,amount,status\n")
        upload = f"/v1/settlements/{day.isoformat()}/reconciliations?bank=110"
        status, _, report = await call(http, today, "POST", upload, headers=treasury, data=header.encode())
        assert status == 200 and report["summary"]["missing_at_bank"] == 3, report
        status, _, report = await call(http, today, "POST", upload, headers=treasury, data=b"nonsense,header\n1,2\n")
        assert status == 400 and report["response_code"] == "30"
        status, _, _ = await call(http, today, "POST", upload, headers={**support, "Content-Type": "text/csv"},
                                  data=header.encode())
        assert status == 403
        assert await db.fetchval("SELECT count(*) FROM recon_items WHERE status = 'open'") == 3

    actions = [r["action"] for r in await db.fetch("SELECT actor, action FROM audit_log ORDER BY id")]
    for expected in ("denied", "session.login", "settlement.close.refused", "settlement.close", "settlement.view",
                     "settlement.report", "reconciliation.import"):
        assert expected in actions, (expected, actions)


async def test_transaction_search_story_notes_and_item_resolution(make_gateway, db):
    gw = make_gateway(banks=BANKS)
    nop = NOPS[0]
    await add_pbb(db, nop=nop, year=2026, due=dt.date(2099, 8, 31), principal=100_000)
    await add_pbb(db, nop=NOPS[1], year=2026, due=dt.date(2099, 8, 31), principal=100_000)
    add_user(gw, "budi", "support")
    add_user(gw, "siti", "treasury")
    support = {"Authorization": f"Bearer {token_for(gw, 'budi')}"}
    treasury = {"Authorization": f"Bearer {token_for(gw, 'siti')}"}
    async with gw.client() as iso:
        assert (await iso.request(iso.inquiry("pbb", nop + "2026")))["39"] == "00"
        refused = iso.payment("pbb", nop + "2026", 99_999)
        assert (await iso.request(refused))["39"] == "13"
        payment = iso.payment("pbb", nop + "2026", 100_000)
        paid = await iso.request(payment)
        assert paid["39"] == "00"
        assert (await iso.request(iso.reversal(payment)))["39"] == "00"
        other = await iso.request(iso.payment("pbb", NOPS[1] + "2026", 100_000))
        assert other["39"] == "00"
    day = dt.date.fromisoformat(str(await db.fetchval("SELECT business_date FROM payments LIMIT 1")))

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        display = "32.75.010.001.001-0001.0"
        status, _, found = await call(http, gw, "GET", f"/v1/transactions?nop={display}", headers=support)
        assert status == 200 and [t["ntpd"] for t in found["transactions"]] == [paid["47"]]
        t = found["transactions"][0]
        assert (t["status"], t["amount"], t["bank"], t["stan"]) == ("reversed", 100_000, "110", payment["11"])
        for query in (f"ntpd={paid['47']}", f"stan={payment['11']}", f"rrn={payment['37']}"):
            status, _, by = await call(http, gw, "GET", f"/v1/transactions?{query}", headers=support)
            assert [x["id"] for x in by["transactions"]] == [t["id"]], query
        status, _, both = await call(http, gw, "GET", f"/v1/transactions?bank=110&date={day}", headers=support)
        assert len(both["transactions"]) == 2 and both["transactions"][0]["id"] > both["transactions"][1]["id"]
        status, _, _ = await call(http, gw, "GET", "/v1/transactions?nop=12", headers=support)
        assert status == 400

        # The story: the refused attempt, the payment and its reversal, as the message log recorded them. The
        # approvals' answer rows are written with their payment and reversal, the other rows by the batched
        # log a moment later: wait for all of them.
        expected = {("out", "0210", "13"), ("out", "0210", "00"), ("out", "0410", "00"), ("in", "0400", None)}
        for _ in range(100):
            status, _, story = await call(http, gw, "GET", f"/v1/transactions/{t['id']}", headers=support)
            codes = [(m["direction"], m["mti"], m["response_code"]) for m in story["messages"]]
            if expected <= set(codes):
                break
            await asyncio.sleep(0.05)
        assert expected <= set(codes), codes
        assert codes.count(("in", "0200", None)) == 3  # the inquiry, the refused payment, the payment
        assert story["reversal"]["amount"] == 100_000 and story["quotes"][0]["total"] == 100_000
        status, _, _ = await call(http, gw, "POST", f"/v1/transactions/{t['id']}/notes", headers=support,
                                  json={"note": "taxpayer called: the teller reversed it, paid again later"})
        assert status == 201
        status, _, story = await call(http, gw, "GET", f"/v1/transactions/{t['id']}", headers=support)
        assert [n["note"] for n in story["notes"]] == ["taxpayer called: the teller reversed it, paid again later"]
        status, _, _ = await call(http, gw, "GET", "/v1/transactions/999999", headers=support)
        assert status == 404

        # A reconciliation item resolved with a note; the payment is untouched.
        header = b"business_date,bank_code,ntpd,ntb,rrn,stan,transmission_datetime,tax,bill_id,amount,status\n"
        status, _, report = await call(http, gw, "POST", f"/v1/settlements/{day}/reconciliations?bank=110",
                                       headers={**treasury, "Content-Type": "text/csv"}, data=header)
        assert status == 200 and report["summary"]["missing_at_bank"] == 1
        status, _, items = await call(http, gw, "GET", f"/v1/reconciliation-items?date={day}", headers=support)
        assert [i["ntpd"] for i in items["items"]] == [other["47"]]
        item = items["items"][0]["id"]
        resolve = f"/v1/reconciliation-items/{item}/resolve"
        status, _, _ = await call(http, gw, "POST", resolve, headers=support, json={"resolution": "later", "note": "x"})
        assert status == 400
        status, _, done = await call(http, gw, "POST", resolve, headers=support,
                                     json={"resolution": "accepted", "note": "bank confirmed by phone"})
        assert status == 200 and done["resolved_by"] == "budi"
        status, _, _ = await call(http, gw, "POST", resolve, headers=support,
                                  json={"resolution": "accepted", "note": "again"})
        assert status == 409
        status, _, items = await call(http, gw, "GET", f"/v1/reconciliation-items?date={day}", headers=support)
        assert items["items"] == []
    assert await db.fetchval("SELECT count(*) FROM payments") == 2
    row = await db.fetchrow("SELECT resolution, resolution_note, resolved_by FROM recon_items WHERE id = $1", item)
    assert tuple(row) == ("accepted", "bank confirmed by phone", "budi")
    actions = {r["action"] for r in await db.fetch("SELECT action FROM audit_log")}
    assert {"transactions.search", "transactions.story", "transactions.note", "reconciliation.items",
            "reconciliation.resolve", "reconciliation.import"} <= actions
