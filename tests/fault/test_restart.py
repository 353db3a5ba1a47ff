"""The database restarts under load (a failover looks the same to the gateway): a private embedded cluster
is stopped (fast shutdown: every session ended, transactions in flight rolled back) and started again while
payments flow. The bank gets 91 while it is down, the same gateway process approves again once it is back,
and nothing the bank was told 00 is lost."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time

import asyncpg
import pytest

from gateway.store.embedded import EmbeddedPostgres

from .harness import (
    Bank,
    Load,
    Report,
    check_answers,
    check_database,
    check_message_log,
    check_repeats,
    seed_bills,
    wait_recovery,
)

pytestmark = pytest.mark.integration

DOWN_S = 2.0


@pytest.fixture
def own_cluster():
    """A cluster of this test's own (the session's is shared by every other test)."""
    directory = tempfile.mkdtemp(prefix="gateway-fault-pg-")
    os.chmod(directory, 0o755)
    cluster = EmbeddedPostgres(directory)
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(directory, ignore_errors=True)


async def test_database_restart_mid_load(make_gateway, own_cluster):
    report = Report("database restart")
    gw = make_gateway(start=False)
    gw.db_url = own_cluster.dsn()
    await asyncio.to_thread(gw.start)  # migrates the new cluster
    db = await asyncpg.connect(own_cluster.dsn())
    bank = None
    try:
        bills = await seed_bills(db, 3000)
        await db.close()
        bank = await Bank(gw, iso_connections=4).open()
        load = Load(bank, bills[:2500], workers=8)
        await load.until_approved(50)
        down_at = time.monotonic()
        await asyncio.to_thread(own_cluster.stop)
        await asyncio.sleep(DOWN_S)
        await asyncio.to_thread(own_cluster.start)
        up_at = time.monotonic()
        await wait_recovery(report, bank, bills[2500:], up_at)
        await load.stop()

        check_answers(report, bank.exchanges, allowed={"00", "91"})
        while_down = [ex for ex in bank.exchanges if down_at < ex.sent and ex.answered is not None
                      and ex.answered < up_at]
        report.figures.update(down_s=round(up_at - down_at, 2), requests_while_down=len(while_down),
                              rc91_while_down=sum(ex.rc == "91" for ex in while_down))
        report.check(report.figures["rc91_while_down"] > 0, "no request was answered 91 while the database was down")
        report.check(gw.proc.poll() is None, "the gateway process exited")
        db = await asyncpg.connect(own_cluster.dsn())
        await check_repeats(report, bank)
        await check_database(report, db, bank)
        await check_message_log(report, db, bank)
    finally:
        if bank is not None:
            await bank.close()
        if not db.is_closed():
            await db.close()
        gw.stop()
    report.assert_clean()
