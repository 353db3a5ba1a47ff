"""Reconciliation of a bank's file against real test payments."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from billdata import add_bphtb, add_pbb
from gateway.service.requests import BphtbPayment, Reversal
from gateway.settlement.errors import ReconFileError
from gateway.settlement.recon import parse_file, reconcile
from helpers.payments import DAY, key, pbb

pytestmark = pytest.mark.integration

BANK = "110"
NOPS = [f"32750100010010{i:03d}0" for i in range(1, 9)]
# column order differs from the spec's on purpose: any order is accepted
EXTRA_BILL = "327501000100100999" + "2026"  # a bill the gateway never saw paid
HEADER = "status,business_date,bank_code,ntpd,ntb,rrn,stan,transmission_datetime,tax,bill_id,amount"


def line(status, ntpd="", stan="", f7="", rrn="", tax="PBB", bill="", amount=154_500, ntb="X", day="2026-11-23",
         bank=BANK) -> str:
    return ",".join([status, day, bank, ntpd, ntb, rrn, stan, f7, tax, bill, str(amount)])


async def payments(engine, db):
    for nop in NOPS:
        await add_pbb(db, nop=nop)
    registration = await add_bphtb(db)
    paid = [await engine.pay_pbb(pbb(BANK, nop, f"{i + 1:06d}")) for i, nop in enumerate(NOPS)]
    bphtb = await engine.pay_bphtb(BphtbPayment(BANK, registration, 5_000_000, "NB", "teller", key("000050", "b")))
    await add_pbb(db, nop="327501000100100980")
    other_bank = await engine.pay_pbb(pbb("111", "327501000100100980", "000060"))  # not in bank 110's report
    assert all(p.rc == "00" for p in paid) and bphtb.rc == "00" and other_bank.rc == "00"
    rev = await engine.reverse(Reversal(BANK, 154_500, key("000070", "r", cls="04"), ntpd=paid[6].ntpd))
    assert rev.rc == "00"
    return paid, bphtb, registration


def bank_file(paid, bphtb, registration) -> str:
    bills = [nop + "2026" for nop in NOPS]
    rows = [
        HEADER,
        line("paid", ntpd=paid[0].ntpd, bill=bills[0]),                                   # 2 matched by ntpd
        # paid[1] left out                                                                 -> missing_at_bank
        line("paid", ntpd=paid[2].ntpd, bill=bills[2], amount=154_000),                   # 3 amount_mismatch
        line("reversed", ntpd=paid[3].ntpd, bill=bills[3]),                               # 4 status_mismatch
        line("paid", stan="000005", f7="1123021500", bill=bills[4]),                      # 5 matched by stan/f7
        line("paid", rrn="RRN000006", bill=bills[5]),                                     # 6 matched by rrn
        line("reversed", ntpd=paid[6].ntpd, bill=bills[6]),                               # 7 matched, reversed
        line("paid", ntpd=paid[7].ntpd, bill=bills[7]),                                   # 8 matched
        line("paid", ntpd=bphtb.ntpd, tax="BPHTB", bill=registration, amount=5_000_000),  # 9 matched BPHTB
        line("paid", stan="000099", f7="1123040000", bill=EXTRA_BILL, amount=99_000),  # 10 extra
    ]
    return "\r\n".join(rows) + "\r\n"


def expected_report(paid, bphtb, registration) -> str:
    b = [nop + "2026" for nop in NOPS]
    n = [p.ntpd for p in paid]
    return (
        "class,ntpd,bank_code,tax,bill_id,gateway_amount,bank_amount,gateway_status,bank_status,line\r\n"
        f"matched,{n[0]},110,PBB,{b[0]},154500,154500,paid,paid,2\r\n"
        f"amount_mismatch,{n[2]},110,PBB,{b[2]},154500,154000,paid,paid,3\r\n"
        f"status_mismatch,{n[3]},110,PBB,{b[3]},154500,154500,paid,reversed,4\r\n"
        f"matched,{n[4]},110,PBB,{b[4]},154500,154500,paid,paid,5\r\n"
        f"matched,{n[5]},110,PBB,{b[5]},154500,154500,paid,paid,6\r\n"
        f"matched,{n[6]},110,PBB,{b[6]},154500,154500,reversed,reversed,7\r\n"
        f"matched,{n[7]},110,PBB,{b[7]},154500,154500,paid,paid,8\r\n"
        f"matched,{bphtb.ntpd},110,BPHTB,{registration},5000000,5000000,paid,paid,9\r\n"
        f"missing_at_gateway,,110,PBB,{EXTRA_BILL},,99000,,paid,10\r\n"
        f"missing_at_bank,{n[1]},110,PBB,{b[1]},154500,,paid,,\r\n"
    )


async def test_recon_classes_items_and_reimport(engine, db, tmp_path):
    paid, bphtb, registration = await payments(engine, db)
    data = bank_file(paid, bphtb, registration).encode()
    first = await reconcile(db, DAY, BANK, "bank.csv", data)
    want = expected_report(paid, bphtb, registration)
    assert first.csv == want
    assert first.counts == {"matched": 6, "amount_mismatch": 1, "status_mismatch": 1, "missing_at_gateway": 1,
                            "missing_at_bank": 1}
    assert first.new_items == 4 and first.exit_code == 1
    items = await db.fetch("SELECT class, ntpd, line, status FROM recon_items ORDER BY class")
    assert [(i["class"], i["status"]) for i in items] == [
        ("amount_mismatch", "open"), ("missing_at_bank", "open"), ("missing_at_gateway", "open"),
        ("status_mismatch", "open")]
    assert {i["ntpd"] for i in items} == {paid[2].ntpd, paid[1].ntpd, None, paid[3].ntpd}

    again = await reconcile(db, DAY, BANK, "bank.csv", data)
    assert again.csv == want and again.new_items == 0 and again.exit_code == 1
    assert await db.fetchval("SELECT count(*) FROM recon_items") == 4
    assert await db.fetchval("SELECT count(*) FROM recon_reports") == 2
    assert "missing_at_bank 1; new items 0" in again.summary()


async def test_all_matched_exits_0(engine, db):
    await add_pbb(db, nop=NOPS[0])
    p = await engine.pay_pbb(pbb(BANK, NOPS[0], "000001"))
    data = (HEADER + "\n" + line("paid", ntpd=p.ntpd, bill=NOPS[0] + "2026") + "\n").encode()
    result = await reconcile(db, DAY, BANK, "f.csv", data)
    assert result.all_matched and result.exit_code == 0 and result.new_items == 0


@pytest.mark.parametrize("body, message", [
    (HEADER + "\n" + line("paid", ntpd="1" * 18, bill="3" * 22) + "\n" + line("paid", ntpd="1" * 18, bill="3" * 22,
                                                                                 amount="12x") + "\n",
     "f.csv:3: amount: must be a positive whole number"),
    (HEADER + "\n" + line("lunas", ntpd="1" * 18, bill="3" * 22) + "\n", "f.csv:2: status: must be paid or reversed"),
    (HEADER + "\n" + line("paid", ntpd="123", bill="3" * 22) + "\n", "f.csv:2: ntpd: must be 18 digits"),
    (HEADER + "\n" + line("paid", ntpd="1" * 18, bill="3" * 22, day="2026-11-24") + "\n",
     "f.csv:2: business_date: 2026-11-24 is not the date being reconciled"),
    (HEADER + "\n" + line("paid", ntpd="1" * 18, bill="3" * 21) + "\n", "f.csv:2: bill_id: must be NOP+year"),
    (HEADER + ",extra\n", "f.csv:1: wrong header: unknown column(s) 'extra'"),
    (HEADER.replace(",amount", "") + "\n", "f.csv:1: wrong header: missing column(s) amount"),
    (HEADER + "\n" + "paid,2026-11-23\n", "f.csv:2: row: has 2 fields, the header has 11"),
])
def test_malformed_file_names_line_and_column(body, message):
    with pytest.raises(ReconFileError) as info:
        parse_file("f.csv", body.encode(), DAY, BANK)
    assert str(info.value).startswith(message), str(info.value)


def _cli(db_url, *args):
    env = {**os.environ, "GATEWAY_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, capture_output=True, timeout=60)


async def test_cli_recon_import(engine, db, db_url, tmp_path):
    paid, bphtb, registration = await payments(engine, db)
    path = tmp_path / "bank.csv"
    path.write_bytes(bank_file(paid, bphtb, registration).encode())
    run = await asyncio.to_thread(_cli, db_url, "recon", "import", "2026-11-23", BANK, str(path))
    assert run.returncode == 1, run.stderr
    assert run.stdout.decode() == expected_report(paid, bphtb, registration)
    assert run.stderr.decode().strip() == ("matched 6, amount_mismatch 1, status_mismatch 1, missing_at_gateway 1, "
                                           "missing_at_bank 1; new items 4")
    out = tmp_path / "report.csv"
    again = await asyncio.to_thread(_cli, db_url, "recon", "import", "2026-11-23", BANK, str(path),
                                    "--output", str(out))
    assert again.returncode == 1 and again.stdout == b""
    assert out.read_bytes().decode() == expected_report(paid, bphtb, registration)
    assert b"new items 0" in again.stderr
    assert await db.fetchval("SELECT count(*) FROM recon_items") == 4

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n" + line("paid", ntpd=paid[0].ntpd, bill=NOPS[0] + "2026", amount="-5") + "\n")
    broken = await asyncio.to_thread(_cli, db_url, "recon", "import", "2026-11-23", BANK, str(bad))
    assert broken.returncode == 2
    assert broken.stderr.decode().strip() == (f"gateway: recon import: {bad}:2: amount: must be a positive whole "
                                              f"number of rupiah (at most 12 digits): '-5'")
    missing = await asyncio.to_thread(_cli, db_url, "recon", "import", "2026-11-23", BANK, str(tmp_path / "no.csv"))
    assert missing.returncode == 2 and b"cannot read" in missing.stderr
    # A bank the gateway does not know (here: no bank configured but the demo's 110) is a usage error.
    reports = await db.fetchval("SELECT count(*) FROM recon_reports")
    unknown = await asyncio.to_thread(_cli, db_url, "recon", "import", "2026-11-23", "111", str(path))
    assert unknown.returncode == 2 and unknown.stdout == b""
    assert unknown.stderr.decode().strip() == "gateway: recon import: bank 111 is not configured"
    assert await db.fetchval("SELECT count(*) FROM recon_reports") == reports
