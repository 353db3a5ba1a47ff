"""``gateway serve`` with two worker processes sharing its ports (gateway/supervisor.py): connections spread
over both, and a SIGKILL of one worker under ISO 8583 and HTTP load loses no approval — every 00 the bank
received is a payment exactly once with its answer in the message log, and a repeat of each approval,
through whichever worker takes it, is answered as stored. The supervisor starts the dead worker again, and
the other worker's connections stay open."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from .harness import Bank, Load, Report, check_database, check_message_log, check_repeats, seed_bills

pytestmark = pytest.mark.integration

WORKERS_ENV = {"GATEWAY_SERVER_WORKERS": "2", "GATEWAY_ISO8583_SNAPSHOT_INTERVAL_S": "1"}


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


async def wait_for(predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")


async def connections_by_worker(db) -> dict[int, int]:
    """Open ISO connections per worker pid, from the snapshots every instance publishes (host:pid@start)."""
    rows = await db.fetch("SELECT instance, count(*) AS n FROM iso_connections GROUP BY instance")
    return {int(r["instance"].split(":")[1].split("@")[0]): r["n"] for r in rows}


async def test_two_workers_spread_and_survive_a_sigkilled_worker(make_gateway, db):
    report = Report("SIGKILL of one worker, ISO + HTTP")
    gw = make_gateway(env=WORKERS_ENV)
    workers = await wait_for(lambda: _two(gw.proc.pid))
    # Both listening: each worker publishes its instance once its listeners are bound.
    await wait_for(lambda: _instances(db, workers))
    bills = await seed_bills(db, 3000)
    bank = await Bank(gw, iso_connections=12, http=True).open()
    try:
        # Twelve connections over two workers: the kernel gives each of them some (all on one would be
        # 1 chance in 2,048).
        spread = await wait_for(lambda: _all_published(db, 12))
        assert set(spread) == workers and all(n > 0 for n in spread.values()), spread
        # /metrics, whichever worker answers, sums every worker's values.
        for _ in range(4):
            text = await asyncio.to_thread(_metrics, gw.http_url)
            assert "gateway_iso_connections 12.0" in text, text
        iso = Load(bank, bills[:1500], workers=8, channel="iso")
        http = Load(bank, bills[1500:], workers=4, channel="http")
        await iso.until_approved(150)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        await asyncio.gather(iso.stop(), http.stop())
        report.figures.update(requests=len(bank.exchanges),
                              approvals=sum(ex.kind == "payment" and ex.rc == "00" for ex in bank.exchanges))
        # The supervisor starts worker 0 again; the survivor keeps its connections.
        renewed = await wait_for(lambda: _two(gw.proc.pid, without=victim))
        survivor = (workers - {victim}).pop()
        assert survivor in renewed and victim not in renewed
        kept = await connections_by_worker(db)
        assert kept.get(survivor) == spread[survivor], (kept, spread)
        await bank.reconnect()
        await check_repeats(report, bank)
        await check_database(report, db, bank)
        await check_message_log(report, db, bank, approvals_only=True)
    finally:
        await bank.close()
    report.assert_clean()
    assert gw.stop(signal.SIGTERM) == 0


def _metrics(url: str) -> str:
    import urllib.request

    return urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()


async def _two(supervisor: int, without: int | None = None) -> set[int] | None:
    found = children(supervisor)
    return found if len(found) == 2 and without not in found else None


async def _instances(db, pids: set[int]) -> bool:
    rows = await db.fetch("SELECT instance FROM gateway_instances")
    return {int(r["instance"].split(":")[1].split("@")[0]) for r in rows} >= pids


async def _all_published(db, count: int) -> dict[int, int] | None:
    found = await connections_by_worker(db)
    return found if sum(found.values()) == count else None


async def test_reloads_while_the_gateway_starts_end_no_process(make_gateway, db):
    """SIGHUPs sent to the supervisor all through its start (migrations, then the workers importing, opening
    their pools, binding their ports): each process keeps the signal pending until it can reload, so no
    worker dies of SIGHUP's default action and each reloads once it serves."""
    gw = make_gateway(env=WORKERS_ENV, start=False)
    starting = asyncio.create_task(asyncio.to_thread(gw.start, WORKERS_ENV))
    # From the supervisor's first log line: the interpreter's own start, before any of the gateway's code
    # runs, cannot hold a signal.
    await wait_for(lambda: _logged(gw, ""), timeout_s=30)
    sent = 0
    while gw.log().count('"gateway ready"') < 2:
        assert gw.proc.poll() is None, gw.log()[-3000:]
        gw.proc.send_signal(signal.SIGHUP)
        sent += 1
        await asyncio.sleep(0.02)
    await starting
    for _ in range(5):  # and a few more while both serve
        gw.proc.send_signal(signal.SIGHUP)
        sent += 1
        await asyncio.sleep(0.1)
    await wait_for(lambda: _logged(gw, '"bank list reloaded"', 2))
    log = gw.log()
    assert sent > 10
    assert '"worker died' not in log, log[-3000:]
    assert log.count('"worker started"') == 2
    assert len(children(gw.proc.pid)) == 2
    async with gw.client() as bank:
        assert (await bank.request(bank.network("301")))["39"] == "00"


async def _logged(gw, text: str, times: int = 1) -> bool:
    return gw.log().count(text) >= times if text else bool(gw.log().strip())
