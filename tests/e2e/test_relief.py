"""Relief programs end to end (spec/domain.md "Relief programs"), over ISO 8583 and HTTP, with two gateways on
one database whose `[testing]` clocks stand either side of a window's end: 22:55 on its `to` date (business
date 2027-06-30) and 23:05 (after the cut-off: business date 2027-07-01, the next program's first day).

Every amount below is worked out by hand from the programs and the bills, never read back from the gateway.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest

from billdata import add_pbb
from gateway.iso8583.profiles import parse_pbb_profile
from gateway.proofs.commands import verify_file
from helpers.dates import jakarta
from helpers.gateway import bank_toml, free_port, start
from helpers.http import assert_business
from helpers.pdf import pdf_text

pytestmark = pytest.mark.integration

DECREE = "Kep. Wali Kota Bekasi No. 973/Kep.100-Bapenda/2027"
JUNE = "[[relief]]\n" + "\n".join([
    'id = "JUNI-2027"', 'name = "Diskon dan penghapusan denda Juni 2027"', f'decree = "{DECREE}"',
    "from = 2027-06-01", "to = 2027-06-30", 'taxes = ["pbb"]', 'tax_years = "current"',
    'principal_discount = "10"', 'penalty_waiver = "100"']) + "\n"
# From the next business date, a smaller discount for kecamatan 020 only.
JULY = "[[relief]]\n" + "\n".join([
    'id = "JULI-2027"', 'name = "Diskon Juli 2027 Kec. 020"', 'decree = "Perwal Bekasi No. 31 Tahun 2027"',
    "from = 2027-07-01", "to = 2027-07-31", 'taxes = ["pbb"]', 'kecamatan = ["020"]',
    'principal_discount = "5"']) + "\n"

# Bill A: due 2027-03-31, principal 1.000.000; on 2027-06-30 three months late at 1 % → penalty 30.000.
# The worked example of the contract: 10 % discount and 100 % waiver → 100.000 off, 30.000 waived, 900.000.
NOP_A = "327502000100100010"  # kecamatan 020
# Bill B: due 2027-08-31 (no penalty), principal 500.000: 50.000 off in June, nothing in July (kecamatan 010).
NOP_B = "327501000100100020"
# Bill D, paid over HTTP: due 2027-08-31, principal 200.000: 20.000 off in June.
NOP_D = "327501000100100030"
YEAR = 2027
# Either side of June's window's end. The clocks run on during the test: a few minutes of margin before the
# cut-off, and a quote lifetime that outlasts the gap between the two.
BEFORE_CUTOFF, AFTER_CUTOFF = jakarta(2027, 6, 30, 22, 55), jakarta(2027, 6, 30, 23, 5)
TTL = "[region]\nquote_ttl_minutes = 30\n"


def clock(moment: datetime) -> str:
    offset = int((moment - datetime.now(UTC)).total_seconds())
    return f"[testing]\nenabled = true\nclock_offset_seconds = {offset}\n"


async def gateways(make_gateway):
    """Both gateways, each with bank 110 on the shared ISO 8583 listener and bank 120 on its own."""
    started = []
    for moment in (BEFORE_CUTOFF, AFTER_CUTOFF):
        port = free_port()
        banks = bank_toml("110", "secret-110") + bank_toml("120", "secret-120", port=port)
        started.append(await start(make_gateway, banks=banks, extra=TTL + clock(moment) + JUNE + JULY,
                                   **{"120": port}))
    return started


def profile(answer: dict[str, str]) -> dict:
    return parse_pbb_profile(answer["62"])


async def test_a_relief_program_over_iso_and_http_from_inquiry_to_settlement(make_gateway, db, http_client,
                                                                             tmp_path, db_url):
    await add_pbb(db, nop=NOP_A, year=YEAR, principal=1_000_000, due=date(2027, 3, 31))
    await add_pbb(db, nop=NOP_B, year=YEAR, principal=500_000, due=date(2027, 8, 31))
    await add_pbb(db, nop=NOP_D, year=YEAR, principal=200_000, due=date(2027, 8, 31))
    june, july = await gateways(make_gateway)

    # -- 22:55 on the window's last day: the program applies ------------------------------------------
    async with june.client("110") as bank:
        inquiry = await bank.request(bank.inquiry("pbb", NOP_A + str(YEAR)))
        assert inquiry["39"] == "00" and inquiry["15"] == "0630"
        assert inquiry["4"] == f"{900_000:012d}"
        bill = profile(inquiry)
        assert (bill["principal"], bill["penalty"], bill["total"], bill["months_late"]) == (900_000, 0, 900_000, 3)
        # The unreduced total is not an amount this bill may be paid with: RC 13, nothing written.
        assert (await bank.request(bank.payment("pbb", NOP_A + str(YEAR), 1_030_000)))["39"] == "13"
        assert await db.fetchval("SELECT count(*) FROM payments") == 0
        pay_a = bank.payment("pbb", NOP_A + str(YEAR), 900_000)
        paid_a = await bank.request(pay_a)
        assert paid_a["39"] == "00" and paid_a["4"] == f"{900_000:012d}"
        ntpd_a = paid_a["47"]
        # Bill B is inquired (a quote of 450.000) and not paid before midnight.
        quote_b = await bank.request(bank.inquiry("pbb", NOP_B + str(YEAR)))
        assert quote_b["4"] == f"{450_000:012d}"
    row = await db.fetchrow("SELECT principal, penalty, total, discount, penalty_waived, relief_id, relief_name,"
                            " relief_decree, business_date FROM payments WHERE ntpd = $1", ntpd_a)
    assert tuple(row) == (900_000, 0, 900_000, 100_000, 30_000, "JUNI-2027",
                          "Diskon dan penghapusan denda Juni 2027", DECREE, date(2027, 6, 30))
    # The ledger books the amounts paid, never a negative reduction.
    ledger = await db.fetch("SELECT account, amount FROM ledger_entries l JOIN payments p ON p.id = l.payment_id"
                            " WHERE p.ntpd = $1 ORDER BY account", ntpd_a)
    assert [tuple(r) for r in ledger] == [("bank", 900_000), ("penalty", 0), ("principal", -900_000)]

    # Over HTTP: the JSON breakdown, then a payment of bill D at its reduced total (its full total is 13).
    http = http_client(gw=june)
    inquiry_d = assert_business(await http.pbb_inquiry(NOP_D, YEAR), "00")
    assert inquiry_d["amount"] == {
        "principal": 180_000, "penalty": 0, "total": 180_000, "months_late": 0, "principal_gross": 200_000,
        "discount": 20_000, "penalty_gross": 0, "penalty_waived": 0,
        "relief": {"id": "JUNI-2027", "name": "Diskon dan penghapusan denda Juni 2027", "decree": DECREE}}
    body = {"nop": NOP_D, "tax_year": YEAR, "ntb": "HTTP-D", "channel": "teller"}
    assert_business(await http.pbb_payment("d-full", amount=200_000, **body), "13")
    paid_d = assert_business(await http.pbb_payment("d-reduced", amount=180_000, **body), "00")
    assert paid_d["amount"]["principal_gross"] == 200_000 and paid_d["amount"]["discount"] == 20_000
    assert paid_d["proof"]["discount"] == 20_000 and paid_d["proof"]["relief"] == "JUNI-2027"

    # The proof of A carries the reduction and verifies offline with the published key.
    status, _, answer_a = await http.call("GET", f"/v1/payments/{ntpd_a}")
    assert status == 200
    assert answer_a["amount"] == {"principal": 900_000, "penalty": 0, "total": 900_000, "principal_gross": 1_000_000,
                                  "discount": 100_000, "penalty_gross": 30_000, "penalty_waived": 30_000,
                                  "relief": {"id": "JUNI-2027", "name": "Diskon dan penghapusan denda Juni 2027",
                                             "decree": DECREE}}
    proof = answer_a["proof"]
    assert (proof["principal"], proof["penalty"], proof["total"]) == (900_000, 0, 900_000)
    assert (proof["discount"], proof["penalty_waived"], proof["relief"]) == (100_000, 30_000, "JUNI-2027")
    _, _, keys = await http.call("GET", "/v1/proofs/keys")
    (tmp_path / "a.json").write_text(json.dumps(answer_a))
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    assert verify_file(str(tmp_path / "a.json"), None, str(tmp_path / "keys.json"))[0]
    # The receipt: gross amounts, each reduction, the program with its decree, and the amount paid.
    status, _, pdf = await http.call("GET", f"/v1/payments/{ntpd_a}/receipt.pdf")
    assert status == 200
    text = " ".join(pdf_text(pdf).split())
    for expected in ("Pokok Pajak Rp1.000.000", "Pengurangan Pokok - Rp100.000", "Denda Rp30.000",
                     "Penghapusan Denda - Rp30.000", "Program JUNI-2027: Diskon dan penghapusan denda Juni 2027",
                     f"Dasar {DECREE}", "Jumlah Dibayar Rp900.000"):
        assert expected in text, (expected, text)

    # A repeat of the payment answers as stored: the same reduced amount and NTPD.
    async with june.client("110") as bank:
        repeat = await bank.request(pay_a)
        assert repeat["39"] == "00" and repeat["47"] == ntpd_a and repeat["4"] == f"{900_000:012d}"
        # The reversal of the discounted payment returns the bill to unpaid.
        reversed_a = await bank.request(bank.reversal(pay_a))
        assert reversed_a["39"] == "00"
    assert await db.fetchval("SELECT status FROM bills WHERE nop = $1", NOP_A) == "unpaid"
    assert await db.fetchval("SELECT amount FROM reversals") == 900_000

    # -- 23:05, after the cut-off: business date 2027-07-01, June's window is over -----------------------
    async with july.client("110") as b110, july.client("120") as b120:
        # Bill B owes its full principal again (July's program is for kecamatan 020 only) …
        full_b = await b120.request(b120.inquiry("pbb", NOP_B + str(YEAR)))
        assert full_b["39"] == "00" and full_b["15"] == "0701" and full_b["4"] == f"{500_000:012d}"
        assert (await b120.request(b120.payment("pbb", NOP_B + str(YEAR), 450_000)))["39"] == "13"
        # … but the quote bank 110 took at 22:55 is honoured, booked with June's program.
        paid_b = await b110.request(b110.payment("pbb", NOP_B + str(YEAR), 450_000))
        assert paid_b["39"] == "00"
        assert (profile(paid_b)["principal"], profile(paid_b)["penalty"]) == (450_000, 0)
        # Bill A, reversed, gets whatever is active now: July's 5 % for kecamatan 020, the penalty in full
        # (the calendar date is still 30 June: three months late).
        again_a = await b110.request(b110.inquiry("pbb", NOP_A + str(YEAR)))
        assert again_a["4"] == f"{950_000 + 30_000:012d}"
        assert (profile(again_a)["principal"], profile(again_a)["penalty"]) == (950_000, 30_000)
    row = await db.fetchrow("SELECT principal, discount, relief_id, business_date, quote_id IS NOT NULL AS quoted"
                            " FROM payments WHERE ntpd = $1", paid_b["47"])
    assert tuple(row) == (450_000, 50_000, "JUNI-2027", date(2027, 7, 1), True)

    # -- the settlement report of 2027-06-30: gross over the date's payments (A, reversed, and D) ------------
    report = subprocess.run([sys.executable, "-m", "gateway", "settle", "report", "2027-06-30", "--config",
                             str(june.config_path)], env={**os.environ, "GATEWAY_DATABASE_URL": db_url},
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    lines = [line.split(",") for line in report.stdout.strip().splitlines()]
    head = lines[0]
    assert head[-3:] == ["net_amount", "discount", "penalty_waived"]
    rows = {(r[head.index("bank_code")], r[head.index("tax")]): dict(zip(head, r)) for r in lines[1:]}
    bank_row, total = rows[("110", "PBB")], rows[("TOTAL", "ALL")]
    assert (bank_row["principal"], bank_row["penalty"], bank_row["payments_amount"]) == ("1080000", "0", "1080000")
    assert (bank_row["discount"], bank_row["penalty_waived"]) == (str(100_000 + 20_000), str(30_000))
    assert (total["discount"], total["penalty_waived"]) == ("120000", "30000")
    assert (bank_row["net_amount"], bank_row["reversals_amount"]) == ("180000", "900000")

    # SISMIOP gets the amounts paid: D's 180.000 with no penalty (A was reversed).
    export = subprocess.run([sys.executable, "-m", "gateway", "payments", "export", "2027-06-30", "--format",
                             "sismiop", "--config", str(june.config_path)],
                            env={**os.environ, "GATEWAY_DATABASE_URL": db_url}, capture_output=True, text=True,
                            timeout=120)
    assert export.returncode == 0, export.stderr
    rows_out = [line.split(",") for line in export.stdout.strip().splitlines()[1:]]
    assert [(r[4], r[5], r[7], r[9], r[10]) for r in rows_out] == [("001", "0003", "2027", "0", "180000")]


async def _sighup_and_wait(gw, expect: str, times: int) -> None:
    """SIGHUP (the supervisor passes it to every worker), then until ``expect`` is logged ``times`` more times."""
    before = gw.log().count(expect)
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while gw.log().count(expect) < before + times:
        assert gw.proc.poll() is None, "gateway died on SIGHUP:\n" + gw.log()[-3000:]
        assert time.monotonic() < deadline, f"{expect!r} not logged {times} more times:\n" + gw.log()[-3000:]
        await asyncio.sleep(0.05)


async def test_a_reload_changes_the_programs_in_every_worker_and_is_audited_once(make_gateway, db):
    await add_pbb(db, nop=NOP_B, year=YEAR, principal=500_000, due=date(2027, 8, 31))
    gw = await start(make_gateway, extra=clock(BEFORE_CUTOFF))
    workers = os.cpu_count() or 1  # the default: one worker per core (gateway/supervisor.py)
    deadline = time.monotonic() + 30
    while gw.log().count('"gateway ready"') < workers:  # every worker up before the first SIGHUP
        assert time.monotonic() < deadline, gw.log()[-3000:]
        await asyncio.sleep(0.05)
    original = gw.config_path.read_text()

    async def totals() -> set[str]:
        """Field 4 of an inquiry on each of eight new connections (they spread over the workers)."""
        seen = set()
        for _ in range(8):
            async with gw.client("110") as bank:
                seen.add((await bank.request(bank.inquiry("pbb", NOP_B + str(YEAR))))["4"])
        return seen

    assert await totals() == {f"{500_000:012d}"}
    gw.config_path.write_text(original + JUNE)
    await _sighup_and_wait(gw, "relief programs reloaded", workers)
    assert await totals() == {f"{450_000:012d}"}
    rows = await db.fetch("SELECT actor, action, detail FROM audit_log WHERE action = 'relief.reload'")
    assert len(rows) == 1, rows
    # The reload itself: one row, not one per worker.
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'config.reload'") == 1
    detail = json.loads(rows[0]["detail"]) if isinstance(rows[0]["detail"], str) else rows[0]["detail"]
    assert (rows[0]["actor"], detail["added"], detail["removed"], detail["changed"]) == \
        ("system", ["JUNI-2027"], [], [])
    assert detail["programs"][0]["principal_discount"] == "10" and detail["programs"][0]["tax_years"] == "current"

    # An invalid program: the reload is refused as a whole, naming the program and the key; June's stays.
    gw.config_path.write_text(original + JUNE + JUNE.replace("JUNI-2027", "BAD").replace('"10"', '"110"'))
    await _sighup_and_wait(gw, "reload refused", workers)
    assert "[[relief]] #2 (BAD): principal_discount" in gw.log()
    assert await totals() == {f"{450_000:012d}"}
    # A reload that leaves the programs as they are writes no relief audit row.
    gw.config_path.write_text(original + JUNE)
    await _sighup_and_wait(gw, "bank list reloaded", workers)
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'relief.reload'") == 1
    # The refused reload wrote no config.reload row; this one writes the second.
    deadline = time.monotonic() + 10
    while await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'config.reload'") < 2:
        assert time.monotonic() < deadline, gw.log()[-3000:]
        await asyncio.sleep(0.05)
    assert await totals() == {f"{450_000:012d}"}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'config.reload'") == 2
