"""`gateway relief list` and `gateway relief check`: a decree's configuration checked before its window opens
(spec/domain.md "Relief programs"), as an operator runs them."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date

import pytest

from billdata import add_pbb

pytestmark = pytest.mark.integration

PROGRAMS = """
[[relief]]
id = "JUNI-2027"
name = "Diskon Juni 2027"
decree = "Kep. Wali Kota Bekasi No. 973/2027"
from = 2027-06-01
to = 2027-06-30
taxes = ["pbb"]
tax_years = "current"
principal_discount = "10"
penalty_waiver = "100"

[[relief]]
id = "AMNESTI"
name = "Penghapusan denda s.d. 2020"
decree = "Perwal Bekasi No. 12/2027"
from = 2027-06-15
to = 2027-07-15
taxes = ["pbb", "bphtb"]
tax_years = { max = 2020 }
kecamatan = ["010"]
penalty_waiver = "50"
"""


def cli(tmp_path, db_url: str, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "gateway.toml"
    config.write_text(PROGRAMS)
    return subprocess.run([sys.executable, "-m", "gateway", "relief", *args, "--config", str(config)],
                          env={**os.environ, "GATEWAY_DATABASE_URL": db_url}, capture_output=True, text=True,
                          timeout=120)


async def test_relief_list_shows_every_program_and_which_are_active(tmp_path, db_url):
    run = await asyncio.to_thread(cli, tmp_path, db_url, "list", "--date", "2027-07-01")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith("ACTIVE on business date 2027-07-01")
    assert lines[1].split() == ["ID", "FROM", "TO", "TAXES", "TAX", "YEARS", "KECAMATAN", "DISCOUNT", "WAIVER",
                                "ACTIVE"]
    assert lines[2].split() == ["JUNI-2027", "2027-06-01", "2027-06-30", "pbb", "current", "all", "10%", "100%", "no"]
    assert lines[3].split() == ["AMNESTI", "2027-06-15", "2027-07-15", "bphtb,pbb", "<=2020", "010", "0%", "50%",
                                "yes"]
    assert "JUNI-2027: Diskon Juni 2027 — Kep. Wali Kota Bekasi No. 973/2027" in run.stdout


async def test_relief_check_names_the_program_that_applies_and_the_amounts(tmp_path, db_url, db):
    # Due 2027-03-31, principal 1.000.000: on 2027-06-20 three months late at 1 %, penalty 30.000.
    await add_pbb(db, year=2027, principal=1_000_000, due=date(2027, 3, 31))
    run = await asyncio.to_thread(cli, tmp_path, db_url, "check", "32.75.010.001.001-0001.0", "2027",
                                  "--date", "2027-06-20")
    assert run.returncode == 0, run.stderr
    assert "matches JUNI-2027 (10% discount, 100% waiver)  discount Rp100.000, penalty waived Rp30.000" in run.stdout
    assert "due without relief: principal Rp1.000.000 + penalty Rp30.000 (3 month(s) late) = Rp1.030.000" \
        in run.stdout
    assert "applies: JUNI-2027 — Diskon Juni 2027 (Kep. Wali Kota Bekasi No. 973/2027)" in run.stdout
    assert "= Rp900.000" in run.stdout
    # After June's window: no program for a 2027 bill (the amnesty is for tax years up to 2020): exit 1.
    after = await asyncio.to_thread(cli, tmp_path, db_url, "check", "327501000100100010", "2027",
                                    "--date", "2027-07-01")
    assert after.returncode == 1 and "no relief program matches" in after.stdout and "applies: none" in after.stdout
    # A year with no bill imported yet: the matching programs, exit 0.
    old = await asyncio.to_thread(cli, tmp_path, db_url, "check", "327501000100100010", "2019", "--date", "2027-07-01")
    assert old.returncode == 0 and "matches AMNESTI" in old.stdout and "no such bill" in old.stdout
    # A malformed NOP or another region's: a usage error naming it.
    bad = await asyncio.to_thread(cli, tmp_path, db_url, "check", "32.75.010.001.001-0001", "2027")
    assert bad.returncode == 2 and "relief check: nop" in bad.stderr
    other = await asyncio.to_thread(cli, tmp_path, db_url, "check", "327601000100100010", "2027")
    assert other.returncode == 2 and "is not of region 3275" in other.stderr
