"""deploy/restore_drill.py against a database with payments made through a running gateway: backup, a new
cluster, restore, the same settlement reports, and the bank's recorded payments sent again to a gateway on the
restore answered exactly as stored (same NTPD, same fields)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from billdata import add_pbb
from helpers.gateway import start

pytestmark = pytest.mark.integration

DRILL = Path(__file__).resolve().parents[2] / "deploy" / "restore_drill.py"
NOPS = [f"3275010001001{i:04d}0" for i in range(1, 4)]


async def test_a_backup_restores_into_a_gateway_that_answers_repeats_as_stored(make_gateway, db, db_url, tmp_path):
    for nop in NOPS:
        await add_pbb(db, nop=nop, year=2026, due=dt.date(2099, 8, 31), principal=150_000)
    gw = await start(make_gateway)
    exchanges = []
    async with gw.client() as iso:
        for nop in NOPS:
            request = iso.payment("pbb", nop + "2026", 150_000)
            answer = await iso.request(dict(request))
            assert answer["39"] == "00", answer
            exchanges.append({"request": request, "answer": answer})
    gw.stop()
    recorded = tmp_path / "exchanges.json"
    recorded.write_text(json.dumps(exchanges))

    run = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(DRILL), "--source-url", db_url, "--config", str(gw.config_path),
                         "--replay", str(recorded)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4. settlement reports compared for 1 date(s)" in run.stdout
    assert "replayed 3 recorded exchange(s): 3 answered as stored" in run.stdout
    assert run.stdout.rstrip().endswith("restore drill: ok")
    # Nothing was written to the source by the drill: still three payments.
    assert await db.fetchval("SELECT count(*) FROM payments") == 3


async def test_the_drill_reports_a_repeat_answered_differently(make_gateway, db, db_url, tmp_path):
    await add_pbb(db, nop=NOPS[0], year=2026, due=dt.date(2099, 8, 31), principal=150_000)
    gw = await start(make_gateway)
    async with gw.client() as iso:
        request = iso.payment("pbb", NOPS[0] + "2026", 150_000)
        answer = await iso.request(dict(request))
    gw.stop()
    answer["47"] = "261123100000009999"  # not what the gateway stored
    recorded = tmp_path / "exchanges.json"
    recorded.write_text(json.dumps([{"request": request, "answer": answer}]))
    run = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(DRILL), "--source-url", db_url, "--config", str(gw.config_path),
                         "--replay", str(recorded)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert "answered differently in fields ['47']" in run.stderr
    assert run.stdout.rstrip().endswith("restore drill: FAILED")
