"""SIGKILL of ``gateway serve`` in the middle of a payment load (spec/domain.md invariants 1, 3, 4, 6):
whatever the bank was told 00 is in the database exactly once, every bill is paid iff it has an active
payment, and money is conserved for every business date."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from gateway.domain.sspd import make_registration
from gateway.settlement.invariants import check_conservation

pytestmark = pytest.mark.integration

PBB_BILLS = 4000
BPHTB_EVERY = 20  # every 20th bill is a BPHTB registration


async def seed(db) -> None:
    pbb, bphtb = [], []
    for i in range(PBB_BILLS):
        if i % BPHTB_EVERY == 0:
            bphtb.append((make_registration(2026, 11, i + 1), f"3275030004{i:07d}0", 1_000_000 + i, 25_000))
        pbb.append((f"3275040005{i:07d}0", 100_000 + i * 7))
    await db.executemany(
        "INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, due_date, status)"
        " VALUES ('PBB', $1 || '2026', $1, 2026, 'WAJIB PAJAK', $2, '2099-08-31', 'unpaid')", pbb)
    await db.executemany(
        "INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, penalty, valid_until, nik,"
        " acquisition_type, acquisition_value, ppat_name, status)"
        " VALUES ('BPHTB', $1, $2, 2026, 'PEMBELI', $3, $4, '2099-12-31', '3275011203800004', 1, 180000000,"
        " 'NOTARIS', 'unpaid')", bphtb)


def start_load(gw, record, duration: float, log_name: str) -> subprocess.Popen:
    log = open(gw.log_path.with_name(log_name), "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "bank-sim", "load", "--config", str(gw.config_path),
         "--port", str(gw.port), "--duration", str(duration), "--concurrency", "16",
         "--mix", "payment=8,reversal=2,inquiry=1", "--timeout", "5", "--record", str(record)],
        env={**os.environ, "GATEWAY_DATABASE_URL": gw.db_url}, stdout=log, stderr=subprocess.STDOUT)


def read_record(path) -> tuple[dict[str, tuple], set[str]]:
    paid: dict[str, tuple] = {}
    reversed_: set[str] = set()
    counts: Counter = Counter()
    for line in path.read_text().splitlines():
        kind, ntpd, tax, bill, stan, transmitted = line.split(",")
        counts[(kind, ntpd)] += 1
        if kind == "paid":
            paid[ntpd] = (tax, bill, stan, transmitted)
        else:
            assert kind == "reversed", line
            reversed_.add(ntpd)
    assert max(counts.values()) == 1, "an NTPD was recorded twice"
    return paid, reversed_


def paid_lines(path) -> int:
    return path.read_text().count("paid,") if path.exists() else 0


async def test_sigkill_during_payment_load_loses_nothing_answered(gateway, db, tmp_path):
    await seed(db)
    record = tmp_path / "record.csv"
    load = start_load(gateway, record, duration=8, log_name="load1.log")
    try:
        # Kill once the load is well under way (payments answered 00 are being recorded).
        deadline = time.monotonic() + 15
        t0 = time.monotonic()
        while paid_lines(record) < 50 or time.monotonic() - t0 < 3:
            assert time.monotonic() < deadline, "the load did not get going:\n" + gateway.log()[-3000:]
            assert load.poll() is None, gateway.log_path.with_name("load1.log").read_text()
            await asyncio.sleep(0.05)
        assert gateway.stop(signal.SIGKILL) == -signal.SIGKILL
        before_restart = paid_lines(record)
        gateway.start()
        load.wait(30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    # The restarted gateway serves the same database (the bank-sim picks the bills still unpaid).
    load2 = start_load(gateway, record, duration=2, log_name="load2.log")
    assert load2.wait(30) == 0, gateway.log_path.with_name("load2.log").read_text()
    assert paid_lines(record) > before_restart

    paid, reversed_ = read_record(record)
    assert reversed_ <= set(paid), "a reversal recorded for a payment never recorded"
    rows = {r["ntpd"]: r for r in await db.fetch(
        "SELECT p.ntpd, p.tax, b.bill_key, p.stan, p.transmitted, r.id AS reversal_id,"
        " ap.payment_id AS active_id FROM payments p JOIN bills b ON b.id = p.bill_id"
        " LEFT JOIN reversals r ON r.payment_id = p.id LEFT JOIN active_payments ap ON ap.payment_id = p.id")}
    # Every 00 the bank was told is a payment row (ntpd is unique, so exactly once), with its own keys.
    missing = sorted(set(paid) - set(rows))
    assert not missing, f"{len(missing)} payments answered 00 are not in the database: {missing[:5]}"
    for ntpd, (tax, bill, stan, transmitted) in paid.items():
        row = rows[ntpd]
        assert (row["tax"].lower(), row["bill_key"], row["stan"], row["transmitted"]) == (tax, bill, stan, transmitted)
        if ntpd in reversed_:
            assert row["reversal_id"] is not None, f"reversal of {ntpd} answered 00 but not in the database"
            assert row["active_id"] is None
        elif row["reversal_id"] is None:
            assert row["active_id"] is not None, f"{ntpd}: neither reversed nor active"
    assert await db.fetchval("SELECT count(*) FROM payments WHERE ntpd = ANY($1::text[])", list(paid)) == len(paid)

    # Every bill with any payment: paid ⇔ exactly one active payment ⇔ exactly one unreversed payment.
    bad = await db.fetch("""
        SELECT b.id, b.status, count(ap.payment_id) AS active,
               (SELECT count(*) FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id
                 WHERE p.bill_id = b.id AND r.id IS NULL) AS unreversed
        FROM bills b LEFT JOIN active_payments ap ON ap.bill_id = b.id
        WHERE EXISTS (SELECT 1 FROM payments p WHERE p.bill_id = b.id)
        GROUP BY b.id, b.status
        HAVING NOT ((b.status = 'paid' AND count(ap.payment_id) = 1) OR (b.status = 'unpaid' AND count(ap.payment_id) = 0))
            OR (SELECT count(*) FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id
                 WHERE p.bill_id = b.id AND r.id IS NULL) <> count(ap.payment_id)""")
    assert [dict(r) for r in bad] == []
    assert await db.fetchval(
        "SELECT count(*) FROM active_payments ap JOIN reversals r ON r.payment_id = ap.payment_id") == 0

    days = [r["business_date"] for r in await db.fetch("SELECT DISTINCT business_date FROM payments")]
    assert days
    for day in days:
        assert await check_conservation(db, day) == [], f"money not conserved on {day}"
