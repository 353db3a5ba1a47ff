"""``demo seed``: the synthetic Kota Bekasi data set (gateway.demo.seed)."""
from __future__ import annotations

import asyncio
import datetime
import io
import os
import subprocess
import sys

import pytest

from gateway.demo import regions
from gateway.demo.seed import seed_region
from gateway.domain.nop import display_nop
from gateway.domain.sspd import parse_registration

pytestmark = pytest.mark.integration

TODAY = datetime.date(2026, 11, 23)
ALL_COLUMNS = ("tax, bill_key, nop, tax_year, taxpayer_name, object_address, kelurahan, kecamatan, land_area,"
               " building_area, principal, penalty, due_date, valid_until, nik, acquisition_type,"
               " acquisition_value, ppat_name, status")


async def seed(db, objects=300, seed=3275, today=TODAY):
    err = io.StringIO()
    summary = await seed_region(db, objects=objects, region_code="3275", seed=seed, err=err, today=today)
    return summary, err.getvalue()


async def all_rows(db):
    return [tuple(r) for r in await db.fetch(f"SELECT {ALL_COLUMNS} FROM bills ORDER BY tax, bill_key")]


async def test_seed_300_objects(db):
    summary, err = await seed(db)
    counts = {(r["tax"], r["status"]): r["n"] for r in
              await db.fetch("SELECT tax, status, count(*) AS n FROM bills GROUP BY tax, status")}
    pbb = {s: counts.get(("PBB", s), 0) for s in ("unpaid", "paid", "cancelled")}
    assert sum(pbb.values()) == 300 * 5
    assert 0.15 * 1500 < pbb["unpaid"] < 0.5 * 1500
    assert 0.45 * 1500 < pbb["paid"] < 0.8 * 1500
    assert 0 < pbb["cancelled"] < 0.03 * 1500
    bphtb = {s: counts.get(("BPHTB", s), 0) for s in ("unpaid", "paid", "cancelled")}
    assert 5 <= sum(bphtb.values()) <= 35
    assert bphtb["unpaid"] > bphtb["paid"] > 0

    rows = await db.fetch("SELECT * FROM bills")
    assert all(r["nop"].startswith("3275") for r in rows)
    assert {r["kecamatan"] for r in rows} == {k for k, _, _ in regions.KECAMATAN}
    kelurahan = {k: set(kels) for k, _, kels in regions.KECAMATAN}
    assert all(r["kelurahan"] in kelurahan[r["kecamatan"]] for r in rows)
    assert all(r["object_address"].startswith("JL. ") for r in rows)

    pbb_rows = [r for r in rows if r["tax"] == "PBB"]
    assert {r["tax_year"] for r in pbb_rows} == {2022, 2023, 2024, 2025, 2026}
    assert all(r["due_date"] in (datetime.date(r["tax_year"], 8, 31), datetime.date(r["tax_year"], 9, 30))
               for r in pbb_rows)
    assert all(20_000 <= r["principal"] <= 50_000_000 and r["penalty"] == 0 for r in pbb_rows)
    assert sorted(r["principal"] for r in pbb_rows)[len(pbb_rows) // 2] in range(100_000, 2_000_000)
    assert sum(r["due_date"].month == 9 for r in pbb_rows) > 0

    bphtb_rows = [r for r in rows if r["tax"] == "BPHTB"]
    for r in bphtb_rows:
        assert parse_registration(r["bill_key"]) == r["bill_key"]
        assert r["nik"].startswith("3275") and len(r["nik"]) == 16 and r["nik"].isdigit()
        assert 1 <= r["acquisition_type"] <= 14
        assert r["principal"] >= 100_000 and r["acquisition_value"] > 80_000_000
        assert r["ppat_name"]
        # registered in the last six months (June..November 2026)
        assert (2026, 6) <= (int(r["bill_key"][:4]), int(r["bill_key"][4:6])) <= (2026, 11)
    assert sum(r["valid_until"] >= TODAY for r in bphtb_rows) > len(bphtb_rows) / 2
    assert sum(r["acquisition_type"] == 1 for r in bphtb_rows) > len(bphtb_rows) / 2

    # the README's example: the lowest NOP's current-year bill is unpaid and payable
    first = await db.fetchrow("SELECT * FROM bills WHERE tax = 'PBB' ORDER BY nop, tax_year DESC LIMIT 1")
    assert (first["nop"], first["tax_year"], first["status"]) == ("327501000100100010", 2026, "unpaid")
    assert display_nop(first["nop"]) in summary
    assert "32.75.010.001.001-0001.0 2026" in summary

    example = next(r for r in bphtb_rows if r["bill_key"] in summary)
    assert example["status"] == "unpaid" and example["valid_until"] >= TODAY
    assert "300 tax objects" in summary and "PBB-P2 2022-2026: 1500 bills" in summary
    assert err.startswith("demo seed: 300 tax objects")


async def test_seeding_twice_gives_the_same_rows(db):
    first_summary, _ = await seed(db)
    before = await all_rows(db)
    second_summary, _ = await seed(db)
    assert await all_rows(db) == before
    assert "new 0, updated 1500" in second_summary
    assert first_summary.replace("new 1500, updated 0", "new 0, updated 1500").splitlines()[2] == \
        second_summary.splitlines()[2]


async def test_same_seed_same_data_other_seed_other_data(db):
    await seed(db, objects=50, seed=1)
    one = await all_rows(db)
    await db.execute("DELETE FROM bills")
    await seed(db, objects=50, seed=1)
    assert await all_rows(db) == one
    await db.execute("DELETE FROM bills")
    await seed(db, objects=50, seed=2)
    assert await all_rows(db) != one


async def test_a_single_object(db):
    summary, _ = await seed(db, objects=1)
    assert await db.fetchval("SELECT count(*) FROM bills WHERE tax = 'PBB'") == 5
    assert await db.fetchval("SELECT count(*) FROM bills WHERE tax = 'BPHTB'") == 1
    assert "gateway inquiry pbb 32.75.010.001.001-0001.0 2026" in summary


async def test_the_current_year_follows_today(db):
    await seed(db, objects=20, today=datetime.date(2031, 1, 5))
    years = [r[0] for r in await db.fetch("SELECT DISTINCT tax_year FROM bills WHERE tax = 'PBB' ORDER BY 1")]
    assert years == [2027, 2028, 2029, 2030, 2031]
    months = {r[0][:6] for r in await db.fetch("SELECT bill_key FROM bills WHERE tax = 'BPHTB'")}
    assert months <= {"203008", "203009", "203010", "203011", "203012", "203101"}


async def test_seeding_again_keeps_a_bill_paid_through_the_gateway(db):
    await seed(db, objects=30)
    bill_id = await db.fetchval("UPDATE bills SET status = 'paid' WHERE bill_key = '3275010001001000102026'"
                                " RETURNING id")
    await db.execute("INSERT INTO business_dates (business_date) VALUES ('2026-11-23')")
    payment_id = await db.fetchval(
        "INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, principal, penalty, total,"
        " business_date, paid_at) SELECT '261123100000000121', id, 'PBB', '110', 'atm', 'iso', 'X', principal, 0,"
        " principal, '2026-11-23', now() FROM bills WHERE id = $1 RETURNING id", bill_id)
    await db.execute("INSERT INTO active_payments VALUES ($1, $2)", bill_id, payment_id)
    summary, _ = await seed(db, objects=30)
    assert "1 bill with an active gateway payment kept status and amount" in summary
    assert await db.fetchval("SELECT status FROM bills WHERE id = $1", bill_id) == "paid"


async def test_the_command_line_inquiry_the_seed_suggests_answers_without_a_bank(db, db_url):
    """`gateway inquiry pbb 32.75.010.001.001-0001.0 2026`, as the seed's summary and the README print it,
    on a gateway whose configuration names no bank: an operator's look-up (no bank checks, no quote)."""
    await seed(db, objects=1, today=datetime.date.today())
    year = str(datetime.date.today().year)
    env = {**os.environ, "GATEWAY_DATABASE_URL": db_url}
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gateway", "inquiry", "pbb",
                                                   "32.75.010.001.001-0001.0", year],
                                  env=env, capture_output=True, text=True, timeout=60)
    assert run.stdout.splitlines()[0] in ("response code   00 (approved)", "response code   88 (already paid)"), \
        run.stdout + run.stderr
    assert "NOP             32.75.010.001.001-0001.0" in run.stdout
    assert await db.fetchval("SELECT count(*) FROM quotes") == 0
