"""Every row of the response-code table (spec/iso8583.md "Response codes"), reached over real TCP.

Each test talks ISO 8583 to a real ``gateway serve`` subprocess and checks the exact RC, the fields that
matter and the rows left (or not left) in the database.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest

from billdata import add_bphtb, add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd, parse_ntpd
from gateway.domain.sspd import make_registration
from gateway.iso8583 import framing
from gateway.iso8583.profiles import parse_pbb_profile
from gateway.iso8583.spec import encode
from helpers.dates import JAKARTA, today
from helpers.db import bill_status, counts, poll_rows
from helpers.gateway import bank_toml, free_port, gateway_behind_proxy

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BPHTB_NOP = "327501000100100020"
YEAR = 2026
PBB_ID = NOP + str(YEAR)
FAR_DUE = date(2099, 8, 31)  # no penalty: total due = principal
PRINCIPAL = 150_000


# -- helpers ---------------------------------------------------------------------------------------


def two_banks(make_gateway, **extra):
    """Bank 110 on the shared listener, bank 120 on its own listener (both from 127.0.0.1)."""
    port = free_port()
    return make_gateway(banks=bank_toml("110") + bank_toml("120", port=port), **{"120": port}, **extra)


async def raw_request(bank, payload: bytes, stan: str, transmitted: str, timeout: float = 10) -> dict[str, str]:
    """Send bytes as one frame and wait for the answer with this STAN and field 7."""
    future = asyncio.get_running_loop().create_future()
    bank._waiting[(stan, transmitted)] = future
    bank.send_raw(framing.frame(payload, bank.framing))
    try:
        return await asyncio.wait_for(future, timeout)
    finally:
        bank._waiting.pop((stan, transmitted), None)


def fake_original(bank, amount: int = PRINCIPAL, bill_id: str = PBB_ID) -> dict[str, str]:
    """A payment request that is built but never sent."""
    return bank.payment("pbb", bill_id, amount)


def assert_answer(answer: dict[str, str], request: dict[str, str], mti: str, rc: str) -> None:
    assert answer["t"] == mti
    assert answer["39"] == rc
    assert answer["11"] == request["11"] and answer["7"] == request["7"]


# -- 00 --------------------------------------------------------------------------------------------


async def test_00_inquiry_payment_reversal_network(gateway, db):
    bill_id = await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        inq = bank.inquiry("pbb", PBB_ID)
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "00")
        assert ans["4"] == f"{PRINCIPAL:012d}"
        (quote,) = await poll_rows(db, "SELECT * FROM quotes")
        assert (quote["bill_id"], quote["bank_code"], quote["principal"], quote["penalty"], quote["total"]) == (
            bill_id, "110", PRINCIPAL, 0, PRINCIPAL)
        assert await bill_status(db, "PBB", PBB_ID) == "unpaid"  # an inquiry changes no bill

        pay = bank.payment("pbb", PBB_ID, PRINCIPAL, ntb="NTB-00-1", channel="6010")
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "00")
        ntpd = ans["47"]
        assert parse_ntpd(ntpd) == ntpd and ntpd[:6] == today().strftime("%y%m%d") and ntpd[6] == "1"
        row = await db.fetchrow("SELECT * FROM payments")
        assert (row["ntpd"], row["bill_id"], row["tax"], row["bank_code"], row["channel"], row["via"],
                row["ntb"], row["terminal_id"], row["rrn"], row["stan"], row["transmitted"], row["principal"],
                row["penalty"], row["total"], row["business_date"]) == (
            ntpd, bill_id, "PBB", "110", "teller", "iso", "NTB-00-1", "ATM00001", pay["37"], pay["11"], pay["7"],
            PRINCIPAL, 0, PRINCIPAL, today())
        assert await bill_status(db, "PBB", PBB_ID) == "paid"
        ledger = await db.fetch("SELECT account, amount FROM ledger_entries ORDER BY account")
        assert [(r["account"], r["amount"]) for r in ledger] == [
            ("bank", PRINCIPAL), ("penalty", 0), ("principal", -PRINCIPAL)]

        rev = bank.reversal(pay)
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "00")
        reversal = await db.fetchrow("SELECT * FROM reversals")
        assert (reversal["payment_id"], reversal["bank_code"], reversal["amount"], reversal["via"]) == (
            row["id"], "110", PRINCIPAL, "iso")
        assert await bill_status(db, "PBB", PBB_ID) == "unpaid"
        assert await db.fetchval("SELECT count(*) FROM active_payments") == 0
        assert await db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account = 'bank'") == 0

        for code in ("001", "301", "201", "002"):
            net = bank.network(code)
            ans = await bank.request(net)
            assert_answer(ans, net, "0810", "00")
            assert ans["70"] == code


async def test_00_bphtb_inquiry_without_field_4_payment_and_reversal(gateway, db):
    registration = await add_bphtb(db, principal=5_000_000, penalty=100_000, valid_until=date(2099, 12, 31))
    async with gateway.client() as bank:
        inq = bank.inquiry("bphtb", registration)
        del inq["4"]  # conditional in an inquiry
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "00")
        assert ans["4"] == "000005100000"
        pay = bank.payment("bphtb", registration + BPHTB_NOP + "2026", 5_100_000)
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "00")
        ntpd = ans["47"]
        assert ntpd[6] == "2"
        assert await bill_status(db, "BPHTB", registration) == "paid"
        rev = bank.reversal(pay)
        assert rev["3"] == "541066"
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "00")
    row = await db.fetchrow("SELECT p.ntpd, p.tax, p.principal, p.penalty, r.amount FROM payments p"
                            " JOIN reversals r ON r.payment_id = p.id")
    assert tuple(row) == (ntpd, "BPHTB", 5_000_000, 100_000, 5_100_000)
    assert await bill_status(db, "BPHTB", registration) == "unpaid"


# -- 05 --------------------------------------------------------------------------------------------


async def test_05_field_32_not_the_connections_bank(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        for request in (bank.inquiry("pbb", PBB_ID), bank.payment("pbb", PBB_ID, PRINCIPAL)):
            request["32"] = "120"
            ans = await bank.request(request)
            assert_answer(ans, request, "0210", "05")
            assert ans["32"] == "120"
        net = bank.network("301")
        net["32"] = "999"
        assert (await bank.request(net))["39"] == "05"
        # The same request under the right bank code goes through.
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"
    assert (await counts(db))["payments"] == 0
    assert (await counts(db, ("quotes",)))["quotes"] == 1
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_05_tax_not_enabled_for_the_bank(make_gateway, db):
    gw = make_gateway(banks=bank_toml("110", taxes=["pbb"]))
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31))
    await add_pbb(db, due=FAR_DUE)
    async with gw.client() as bank:
        inq = bank.inquiry("bphtb", registration)
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "05")
        assert "62" not in ans and ans["4"] == "0" * 12
        pay = bank.payment("bphtb", registration, 5_000_000)
        assert (await bank.request(pay))["39"] == "05"
        rev = bank.reversal(pay)
        assert (await bank.request(rev))["39"] == "05"
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"
    c = await counts(db)
    assert (c["payments"], c["tombstones"], c["quotes"]) == (0, 0, 1)
    assert await bill_status(db, "BPHTB", registration) == "unpaid"


async def test_05_sign_on_required_then_sign_off(make_gateway, db):
    gw = make_gateway(banks=bank_toml("110", require_sign_on=True))
    await add_pbb(db, due=FAR_DUE)
    async with gw.client() as bank:
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "05"
        early = bank.payment("pbb", PBB_ID, PRINCIPAL)
        assert (await bank.request(early))["39"] == "05"
        assert (await bank.request(bank.reversal(early)))["39"] == "05"
        c = await counts(db)
        assert (c["quotes"], c["tombstones"], c["message_keys"]) == (0, 0, 0)
        assert (await bank.request(bank.network("001")))["39"] == "00"
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"
        # Sign-on is per connection: a second connection has not signed on.
        async with gw.client() as other:
            assert (await other.request(other.inquiry("pbb", PBB_ID)))["39"] == "05"
        assert (await bank.request(bank.network("002")))["39"] == "00"
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        assert (await bank.request(pay))["39"] == "05"
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "05"
    assert (await counts(db))["payments"] == 0
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_05_after_sign_off_without_sign_on_requirement(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"
        assert (await bank.request(bank.network("002")))["39"] == "00"
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "05"
        assert (await bank.request(bank.network("001")))["39"] == "00"
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"


async def test_05_disabled_bank_every_request(make_gateway, db):
    gw = make_gateway(banks=bank_toml("110", enabled=False))
    await add_pbb(db, due=FAR_DUE)
    async with gw.client() as bank:  # the connection is accepted
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        unknown_mti = dict(bank.inquiry("pbb", PBB_ID), t="0100")
        dollars = dict(bank.inquiry("pbb", PBB_ID), **{"49": "840"})
        for request in (bank.inquiry("pbb", PBB_ID), pay, bank.reversal(pay), bank.network("001"),
                        bank.network("301"), unknown_mti, dollars):
            ans = await bank.request(request)
            assert ans["39"] == "05", (request["t"], ans)
            assert ans["11"] == request["11"]
    c = await counts(db)
    assert (c["payments"], c["tombstones"], c["quotes"], c["message_keys"]) == (0, 0, 0, 0)


# -- 12 --------------------------------------------------------------------------------------------


async def test_12_unknown_mti_and_processing_codes(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        auth = bank.inquiry("pbb", PBB_ID)
        auth["t"] = "0100"
        ans = await bank.request(auth)
        assert_answer(ans, auth, "0110", "12")

        inq = bank.inquiry("pbb", PBB_ID)
        inq["3"] = "301019"
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "12")
        assert ans["3"] == "301019"

        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        for code in ("341019", "341066", "999999"):  # a reversal must name a payment code
            rev = bank.reversal(pay)
            rev["3"] = code
            ans = await bank.request(rev)
            assert_answer(ans, rev, "0410", "12")
    c = await counts(db)
    assert (c["quotes"], c["tombstones"], c["payments"]) == (0, 0, 0)


async def test_12_payment_after_its_reversal_tombstone(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        rev = bank.reversal(pay)
        ans = await bank.request(rev)  # the original never arrived: 00 and a tombstone
        assert_answer(ans, rev, "0410", "00")
        tomb = await db.fetchrow("SELECT bank_code, stan, transmitted, amount FROM tombstones")
        assert tuple(tomb) == ("110", pay["11"], pay["7"], PRINCIPAL)
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "12")
        assert "47" not in ans
        assert (await bank.request(pay))["39"] == "12"  # and again
    c = await counts(db)
    assert (c["payments"], c["tombstones"], c["reversals"]) == (0, 1, 0)
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_12_reversal_of_another_banks_payment(make_gateway, db):
    gw = two_banks(make_gateway)
    await add_pbb(db, due=FAR_DUE)
    async with gw.client("110") as b110, gw.client("120") as b120:
        pay = b110.payment("pbb", PBB_ID, PRINCIPAL)
        ntpd = (await b110.request(pay))["47"]
        # By NTPD (field 47).
        by_ntpd = b120.reversal(pay, ntpd=ntpd)
        ans = await b120.request(by_ntpd)
        assert_answer(ans, by_ntpd, "0410", "12")
        # By field 90 naming bank 110 as the acquirer.
        by_90 = b120.reversal(pay)
        assert by_90["90"][20:31] == "00000000110"
        ans = await b120.request(by_90)
        assert_answer(ans, by_90, "0410", "12")
        # The paying bank itself, with the processing code of the other tax.
        wrong_tax = dict(b110.reversal(pay), **{"3": "541066"})
        ans = await b110.request(wrong_tax)
        assert_answer(ans, wrong_tax, "0410", "12")
    c = await counts(db)
    assert (c["payments"], c["active_payments"], c["reversals"], c["tombstones"]) == (1, 1, 0, 0)
    assert await bill_status(db, "PBB", PBB_ID) == "paid"


# -- 13 --------------------------------------------------------------------------------------------


async def test_13_payment_amount_neither_total_nor_quote(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["4"] == f"{PRINCIPAL:012d}"
        for amount in (PRINCIPAL - 1, PRINCIPAL + 1, 1):
            pay = bank.payment("pbb", PBB_ID, amount)
            ans = await bank.request(pay)
            assert_answer(ans, pay, "0210", "13")
            assert ans["4"] == pay["4"] and "47" not in ans
    assert (await counts(db))["payments"] == 0
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_13_reversal_amount_differs(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        assert (await bank.request(pay))["39"] == "00"
        for amount in (PRINCIPAL + 1, PRINCIPAL - 1):
            rev = bank.reversal(pay)
            rev["4"] = f"{amount:012d}"
            ans = await bank.request(rev)
            assert_answer(ans, rev, "0410", "13")
            assert ans["4"] == rev["4"]
        c = await counts(db)
        assert (c["reversals"], c["active_payments"]) == (0, 1)
        assert (await bank.request(bank.reversal(pay)))["39"] == "00"
    assert (await counts(db))["reversals"] == 1


async def test_13_a_live_quote_of_the_same_bank_stays_payable(make_gateway, db):
    """A bank's inquiry today quotes the total; just after midnight a new penalty month has started, the
    quoted amount is still payable by that bank (domain.md "Quotes"), by nobody else, and nothing else is."""
    local = datetime.now(UTC).astimezone(JAKARTA)
    await add_pbb(db, due=local.date())  # tomorrow is one month late
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(0, 2), tzinfo=JAKARTA)
    offset = int((tomorrow - local).total_seconds())
    ttl = "[region]\nquote_ttl_minutes = 1440\n"
    today_gw = two_banks(make_gateway, extra=ttl)
    clock = f"[testing]\nenabled = true\nclock_offset_seconds = {offset}\n"
    tomorrow_gw = two_banks(make_gateway, extra=ttl + clock)
    async with today_gw.client("110") as b110:
        assert (await b110.request(b110.inquiry("pbb", PBB_ID)))["4"] == f"{PRINCIPAL:012d}"
    ((quote_id,),) = await poll_rows(db, "SELECT id FROM quotes")
    async with tomorrow_gw.client("110") as b110, tomorrow_gw.client("120") as b120:
        # Tomorrow's due total includes a month of penalty (1 %) for bank 120, which has no quote.
        assert (await b120.request(b120.payment("pbb", PBB_ID, PRINCIPAL)))["39"] == "13"
        assert (await b110.request(b110.payment("pbb", PBB_ID, PRINCIPAL - 1)))["39"] == "13"
        assert (await counts(db))["payments"] == 0
        pay = b110.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await b110.request(pay)
        assert_answer(ans, pay, "0210", "00")
        assert ans["4"] == f"{PRINCIPAL:012d}"
    row = await db.fetchrow("SELECT bank_code, principal, penalty, total, quote_id FROM payments")
    assert tuple(row) == ("110", PRINCIPAL, 0, PRINCIPAL, quote_id)


# -- 14 --------------------------------------------------------------------------------------------


async def test_14_unknown_bill_and_other_region(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    other_region = "327601000100100010"
    await add_pbb(db, nop=other_region, due=FAR_DUE)  # exists, but not in this region
    async with gateway.client() as bank:
        for bill_id in (NOP + "2025", "327501000100100099" + "2026", other_region + "2026"):
            inq = bank.inquiry("pbb", bill_id)
            ans = await bank.request(inq)
            assert_answer(ans, inq, "0210", "14")
            assert "62" not in ans and ans["4"] == "0" * 12
            pay = bank.payment("pbb", bill_id, PRINCIPAL)
            assert (await bank.request(pay))["39"] == "14"
    c = await counts(db)
    assert (c["payments"], c["quotes"]) == (0, 0)
    assert await bill_status(db, "PBB", other_region + "2026") == "unpaid"


async def test_14_bphtb_nop_and_year_disagree_with_registration(gateway, db):
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31))
    async with gateway.client() as bank:
        for suffix in ("327501000100100010" + "2026", BPHTB_NOP + "2025", "327601000100100020" + "2026"):
            inq = bank.inquiry("bphtb", registration + suffix)
            assert (await bank.request(inq))["39"] == "14", suffix
            pay = bank.payment("bphtb", registration + suffix, 5_000_000)
            assert (await bank.request(pay))["39"] == "14", suffix
        assert (await counts(db))["payments"] == 0
        # Agreeing parts, and the registration alone, are found.
        assert (await bank.request(bank.inquiry("bphtb", registration + BPHTB_NOP + "2026")))["39"] == "00"
        assert (await bank.request(bank.inquiry("bphtb", registration)))["39"] == "00"
        absent = make_registration(2026, 11, 999)  # well-formed, but no such registration
        assert (await bank.request(bank.inquiry("bphtb", absent)))["39"] == "14"


async def test_14_reversal_ntpd_names_no_payment(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        ntpd = make_ntpd(today(), Tax.PBB, 424242)
        rev = bank.reversal(fake_original(bank), ntpd=ntpd)
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "14")
        assert ans["47"] == ntpd
    c = await counts(db)
    assert (c["tombstones"], c["reversals"]) == (0, 0)  # no tombstone: it names no message


# -- 30 --------------------------------------------------------------------------------------------


async def test_30_missing_and_malformed_fields(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    registration = await add_bphtb(db, valid_until=date(2099, 12, 31))
    bad_check = registration[:-2] + f"{(int(registration[-2:]) + 1) % 100:02d}"
    async with gateway.client() as bank:
        cases = []
        inq = bank.inquiry("pbb", PBB_ID)
        del inq["61"]
        cases.append(("inquiry without 61", inq))
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        del pay["48"]
        cases.append(("payment without 48", pay))
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        del pay["4"]
        cases.append(("payment without 4", pay))
        cases.append(("NOP with letters", bank.inquiry("pbb", "3275010001001000AB2026")))
        cases.append(("NOP too short", bank.payment("pbb", "32750100010010001" + "2026", PRINCIPAL)))
        cases.append(("SSPD check digits", bank.inquiry("bphtb", bad_check)))
        cases.append(("SSPD check digits (payment)", bank.payment("bphtb", bad_check, 5_000_000)))
        inq = bank.inquiry("pbb", PBB_ID)
        inq["49"] = "840"
        cases.append(("currency 840", inq))
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL, channel="6099")
        cases.append(("channel 6099", pay))
        for name, request in cases:
            ans = await bank.request(request)
            assert ans["39"] == "30", (name, ans)
            assert ans["t"] == "0210" and ans["11"] == request["11"], name
    c = await counts(db)
    assert (c["payments"], c["quotes"], c["message_keys"]) == (0, 0, 0)


async def test_30_undecodable_request_echoes_what_was_read(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        request = bank.inquiry("pbb", PBB_ID)
        whole = encode(request)
        # Field 61 (LLLVAR, the last field) cut off: the bitmap announces a field that is not there.
        truncated = whole[: -(3 + len(PBB_ID))]
        ans = await raw_request(bank, truncated, request["11"], request["7"])
        assert ans["t"] == "0210" and ans["39"] == "30"
        for field in ("3", "4", "7", "11", "12", "13", "18", "32", "37", "41", "49"):
            assert ans[field] == request[field], field
        assert "61" not in ans and "62" not in ans

        # An undecodable answer MTI is dropped and the connection stays usable.
        dropped = bank.inquiry("pbb", PBB_ID)
        dropped["t"] = "0210"
        bank.send_raw(framing.frame(encode(dropped)[:-5], bank.framing))
        bank.send_raw(framing.frame(b"XXXX not iso at all", bank.framing))
        net = bank.network("301")
        assert (await bank.request(net))["39"] == "00"
        assert bank.unsolicited.empty()
    assert (await counts(db))["quotes"] == 0
    rows = []
    for _ in range(100):  # the message log is written in batches
        rows = await db.fetch("SELECT mti, direction FROM message_log WHERE event = 'format_error' ORDER BY id")
        if len(rows) >= 3:
            break
        await asyncio.sleep(0.05)
    assert sorted((r["mti"] or "", r["direction"]) for r in rows) == [("", "in"), ("0200", "in"), ("0210", "in")]


# -- 33 --------------------------------------------------------------------------------------------


async def test_33_cancelled_bill_and_expired_bphtb(gateway, db):
    await add_pbb(db, due=FAR_DUE, status="cancelled")
    day = today()
    expired = await add_bphtb(db, serial=1, valid_until=day - timedelta(days=1))
    last_day = await add_bphtb(db, serial=2, valid_until=day, nop="327501000100100030")
    async with gateway.client() as bank:
        for tax, bill_id, amount in (("pbb", PBB_ID, PRINCIPAL), ("bphtb", expired, 5_000_000)):
            inq = bank.inquiry(tax, bill_id)
            ans = await bank.request(inq)
            assert_answer(ans, inq, "0210", "33")
            assert "62" not in ans
            pay = bank.payment(tax, bill_id, amount)
            assert (await bank.request(pay))["39"] == "33"
        assert (await counts(db))["payments"] == 0
        # Payable through its valid-until date.
        assert (await bank.request(bank.inquiry("bphtb", last_day)))["39"] == "00"
        assert (await bank.request(bank.payment("bphtb", last_day, 5_000_000)))["39"] == "00"
    assert await bill_status(db, "PBB", PBB_ID) == "cancelled"
    assert await bill_status(db, "BPHTB", expired) == "unpaid"
    assert (await counts(db))["payments"] == 1


# -- 57 --------------------------------------------------------------------------------------------


async def test_57_reversal_after_business_date_closed(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await bank.request(pay)
        assert ans["39"] == "00" and ans["15"] == today().strftime("%m%d")
        closed = await db.execute("UPDATE business_dates SET state = 'closed' WHERE business_date = $1", today())
        assert closed == "UPDATE 1"
        rev = bank.reversal(pay)
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "57")
        repeat = dict(rev, t="0401")
        assert (await bank.request(repeat))["39"] == "57"
    c = await counts(db)
    assert (c["reversals"], c["active_payments"]) == (0, 1)
    assert await bill_status(db, "PBB", PBB_ID) == "paid"


# -- 88 --------------------------------------------------------------------------------------------


async def test_88_second_payment_ntpd_only_for_the_same_bank(make_gateway, db):
    gw = two_banks(make_gateway)
    await add_pbb(db, due=FAR_DUE)
    async with gw.client("110") as b110, gw.client("120") as b120:
        ntpd = (await b110.request(b110.payment("pbb", PBB_ID, PRINCIPAL)))["47"]
        again = b110.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await b110.request(again)
        assert_answer(ans, again, "0210", "88")
        assert ans["47"] == ntpd
        assert "62" not in ans  # a profile only in an RC 88 inquiry
        other = b120.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await b120.request(other)
        assert_answer(ans, other, "0210", "88")
        assert "47" not in ans
    c = await counts(db)
    assert (c["payments"], c["active_payments"]) == (1, 1)


async def test_88_inquiry_of_a_paid_bill(gateway, db):
    due = date(today().year - 1, 8, 31)  # late: the total due includes a penalty
    await add_pbb(db, due=due)
    async with gateway.client() as bank:
        total = int((await bank.request(bank.inquiry("pbb", PBB_ID)))["4"])
        assert total > PRINCIPAL
        assert (await bank.request(bank.payment("pbb", PBB_ID, total)))["39"] == "00"
        inq = bank.inquiry("pbb", PBB_ID)
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "88")
        assert ans["4"] == "0" * 12
        assert "47" not in ans
        profile = parse_pbb_profile(ans["62"])
        assert (profile["nop"], profile["tax_year"], profile["principal"], profile["penalty"], profile["total"],
                profile["months_late"]) == (NOP, YEAR, PRINCIPAL, 0, 0, 0)
        assert ans["62"][253:265] == "0" * 12 and ans["62"][265:267] == "00"


async def test_88_bill_imported_as_paid(gateway, db):
    await add_pbb(db, due=FAR_DUE, status="paid")
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "88")
        assert "47" not in ans
        ans = await bank.request(bank.inquiry("pbb", PBB_ID))
        assert ans["39"] == "88" and ans["4"] == "0" * 12 and "47" not in ans
        assert parse_pbb_profile(ans["62"])["total"] == 0
    assert (await counts(db))["payments"] == 0


# -- 90 --------------------------------------------------------------------------------------------


async def test_90_cutoff_in_progress_stores_nothing(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    day = today()
    await db.execute("INSERT INTO business_dates (business_date, state) VALUES ($1, 'closing')"
                     " ON CONFLICT (business_date) DO UPDATE SET state = 'closing'", day)
    async with gateway.client() as bank:
        inq = bank.inquiry("pbb", PBB_ID)
        ans = await bank.request(inq)
        assert_answer(ans, inq, "0210", "90")
        assert "62" not in ans
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "90")
        assert "47" not in ans
        c = await counts(db)
        assert (c["payments"], c["message_keys"], c["ledger_entries"]) == (0, 0, 0)
        assert await db.fetchval("SELECT count(*) FROM quotes") == 0
        assert await bill_status(db, "PBB", PBB_ID) == "unpaid"
        await db.execute("UPDATE business_dates SET state = 'open' WHERE business_date = $1", day)
        ans = await bank.request(pay)  # the same message: processed afresh
        assert_answer(ans, pay, "0210", "00")
        assert parse_ntpd(ans["47"])
        assert (await counts(db))["payments"] == 1
        assert await bill_status(db, "PBB", PBB_ID) == "paid"
        # A reversal while its date is closing: 90 as well, nothing stored, then processed afresh.
        await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", day)
        rev = bank.reversal(pay)
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "90")
        c = await counts(db)
        assert (c["reversals"], c["tombstones"], c["message_keys"]) == (0, 0, 1)
        await db.execute("UPDATE business_dates SET state = 'open' WHERE business_date = $1", day)
        assert (await bank.request(rev))["39"] == "00"
    c = await counts(db)
    assert (c["payments"], c["reversals"]) == (1, 1)
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


# -- 91 --------------------------------------------------------------------------------------------


async def test_91_database_unreachable(make_gateway, db_url, db):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=2025, due=FAR_DUE)
    gw, proxy = await gateway_behind_proxy(make_gateway, db_url)
    try:
        async with gw.client(timeout_s=15) as bank:
            assert (await bank.request(bank.inquiry("pbb", PBB_ID)))["39"] == "00"
            await proxy.cut()
            inq = bank.inquiry("pbb", PBB_ID)
            ans = await bank.request(inq)  # within the client's 15 s, or TimeoutError
            assert_answer(ans, inq, "0210", "91")
            pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
            ans = await bank.request(pay)
            assert_answer(ans, pay, "0210", "91")
            assert "47" not in ans
            assert gw.proc.poll() is None
            assert (await bank.request(bank.network("301")))["39"] == "00"
            await proxy.start()
            ans = await bank.request(pay)  # the same payment again: 91 stored nothing
            assert_answer(ans, pay, "0210", "00")
            assert (await bank.request(bank.payment("pbb", NOP + "2025", PRINCIPAL)))["39"] == "00"
    finally:
        if proxy.server is not None:
            await proxy.cut()
        gw.stop()
    rows = await db.fetch("SELECT stan FROM payments ORDER BY id")
    assert len(rows) == 2 and rows[0]["stan"] == pay["11"]


# -- 94 --------------------------------------------------------------------------------------------


async def test_94_same_key_different_content_and_identical_repeat(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        first = await bank.request(pay)
        assert first["39"] == "00"
        repeat = await bank.request(dict(pay))
        assert repeat == first  # every field, and the raw bytes too
        changed = dict(pay, **{"4": f"{PRINCIPAL + 1000:012d}"})
        ans = await bank.request(changed)
        assert_answer(ans, changed, "0210", "94")
        assert "47" not in ans
        other_ntb = dict(pay, **{"48": "ANOTHER-NTB"})
        assert (await bank.request(other_ntb))["39"] == "94"
        as_inquiry = dict(pay, **{"3": "341019"})
        assert (await bank.request(as_inquiry))["39"] == "94"
        assert await bank.request(dict(pay)) == first
    c = await counts(db)
    assert (c["payments"], c["message_keys"]) == (1, 1)


# -- 96 --------------------------------------------------------------------------------------------


async def test_96_any_other_failure(gateway, db):
    """A failure that is neither the bank's nor the database's availability (here: the payments table refusing
    a row through an internal error) is answered 96, changes nothing, and the server stays up. An inquiry's
    quote is written behind its answer: the same failure there costs the quote only (spec/domain.md
    "Quotes"), and the inquiry is answered."""
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=2025, due=FAR_DUE)
    await db.execute("""
        CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF (SELECT tax_year FROM bills WHERE id = NEW.bill_id) = 2026 THEN
                  RAISE EXCEPTION 'internal failure' USING ERRCODE = 'XX000'; END IF;
              RETURN NEW; END $$;
        CREATE TRIGGER test_boom BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION test_boom();
        CREATE TRIGGER test_boom BEFORE INSERT ON quotes FOR EACH ROW EXECUTE FUNCTION test_boom();
    """)
    async with gateway.client() as bank:
        inq = bank.inquiry("pbb", PBB_ID)
        assert_answer(await bank.request(inq), inq, "0210", "00")
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ans = await bank.request(pay)
        assert_answer(ans, pay, "0210", "96")
        assert "47" not in ans and "62" not in ans
        assert gateway.proc.poll() is None
        c = await counts(db)
        # The inquiry's quote and key are one row of the recorder's: lost together.
        assert (c["payments"], c["ledger_entries"], c["quotes"], c["message_keys"]) == (0, 0, 0, 0)
        assert await bill_status(db, "PBB", PBB_ID) == "unpaid"
        assert (await bank.request(bank.network("301")))["39"] == "00"
        assert (await bank.request(bank.inquiry("pbb", NOP + "2025")))["39"] == "00"
        assert (await bank.request(bank.payment("pbb", NOP + "2025", PRINCIPAL)))["39"] == "00"


# -- 0401 repeats ----------------------------------------------------------------------------------


async def test_0401_repeats_reverse_once(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ntpd = (await bank.request(pay))["47"]
        rev = bank.reversal(pay)
        first = await bank.request(rev)
        assert_answer(first, rev, "0410", "00")
        for _ in range(2):
            repeat = dict(rev, t="0401")
            ans = await bank.request(repeat)
            assert_answer(ans, repeat, "0411", "00")
        # A new reversal (another key) of a reversed payment: 00 again, nothing more.
        again = bank.reversal(pay, ntpd=ntpd)
        assert (await bank.request(again))["39"] == "00"
    c = await counts(db)
    assert (c["reversals"], c["active_payments"], c["tombstones"]) == (1, 0, 0)
    assert await db.fetchval("SELECT count(*) FROM ledger_entries WHERE reversal_id IS NOT NULL") == 3
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_00_reversal_by_ntpd_with_field_90_zeros(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        ntpd = (await bank.request(pay))["47"]
        rev = bank.reversal(pay, ntpd=ntpd)
        rev["90"] = "0" * 42
        ans = await bank.request(rev)
        assert_answer(ans, rev, "0410", "00")
        assert ans["47"] == ntpd and ans["90"] == "0" * 42
    row = await db.fetchrow("SELECT p.ntpd, r.amount FROM reversals r JOIN payments p ON p.id = r.payment_id")
    assert tuple(row) == (ntpd, PRINCIPAL)
    assert (await counts(db))["tombstones"] == 0
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"


async def test_0401_without_0400_is_handled_as_the_0400(gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with gateway.client() as bank:
        pay = bank.payment("pbb", PBB_ID, PRINCIPAL)
        assert (await bank.request(pay))["39"] == "00"
        repeat = bank.reversal(pay, repeat=True)
        assert repeat["t"] == "0401"
        ans = await bank.request(repeat)
        assert_answer(ans, repeat, "0411", "00")
        assert (await bank.request(dict(repeat)))["39"] == "00"
        # The 0400 arriving late, with the same key, is a repeat too.
        late = dict(repeat, t="0400")
        ans = await bank.request(late)
        assert_answer(ans, late, "0410", "00")
    c = await counts(db)
    assert (c["reversals"], c["active_payments"]) == (1, 0)
    assert await bill_status(db, "PBB", PBB_ID) == "unpaid"
