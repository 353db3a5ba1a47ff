"""The console's Beranda (gateway/staff/dashboard.py) against real PostgreSQL, through the runtime role's pool as
`gateway serve` runs it: today's totals per bank and channel, the last hour's answers by RC, the open work
items, every instance's published ISO 8583 connections (a stale one marked), the audit row; and the snapshot
writer (rows replaced each round, withdrawn at stop, abandoned instances purged)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from billdata import add_pbb
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import IsoOrigin, MessageKey, PbbPayment, Reversal
from gateway.staff.dashboard import (
    AnswerLine,
    ChannelTotals,
    ConnectionPublisher,
    DashboardService,
)
from gateway.staff.support import Actor
from gateway.store.db import create_pool

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 23)   # the business date of the integration tests' clock (09:15 in Jakarta)
ACTOR = Actor("dewi", via="session", source="10.1.2.3")
DUE = date(2026, 12, 31)   # not yet due: the amount is the principal


def nop(i: int) -> str:
    return f"3275010001001{i:04d}0"


def payment(i: int, bank: str, channel: str, amount: int) -> PbbPayment:
    stan = f"{i:06d}"
    return PbbPayment(bank=bank, nop=nop(i), tax_year=2026, amount=amount, ntb="NTB" + stan, channel=channel,
                      key=MessageKey.iso(stan, "1123021500", "02", f"{bank}|{nop(i)}|{amount}"),
                      origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="RRN" + stan, terminal_id="T1"))


def reversal(bank: str, ntpd: str, amount: int, stan: str) -> Reversal:
    return Reversal(bank, amount, MessageKey.iso(stan, "1123021500", "04", f"rev|{ntpd}"), ntpd=ntpd)


@dataclass(frozen=True)
class FakeConnection:
    connection_id: str
    bank_code: str
    peer: str
    connected_at: datetime
    signed_on: bool
    last_message_at: datetime
    in_flight: int


@pytest.fixture
async def runtime_pool(db_url, config):
    pool = await create_pool(config.database, db_url)  # as gateway_runtime, as `gateway serve` runs it
    yield pool
    await pool.close()


@pytest.fixture
def dashboard(runtime_pool, config, clock):
    return DashboardService(runtime_pool, config, clock)


async def log_answer(db, rc: str | None, channel: str = "iso", *, ago_s: float = 60, direction: str = "out",
                     event: str = "message") -> None:
    await db.execute(
        "INSERT INTO message_log (logged_at, channel, direction, event, bank_code, response_code)"
        " VALUES ($1, $2, $3, $4, '100', $5)",
        datetime.now(UTC) - timedelta(seconds=ago_s), channel, direction, event, rc)


async def test_the_overview_has_exact_totals_answers_work_and_connections(db, pool, clock, config, runtime_pool,
                                                                            dashboard):
    engine = Engine(ServiceContext(pool=pool, clock=clock, config=config))
    for i in range(1, 10):
        await add_pbb(db, nop=nop(i), principal=100_000 * i, due=DUE)
    # The day before: one payment of bank 100 by teller, reversed today. Neither is today's money.
    clock.advance(days=-1)
    yesterday = await engine.pay_pbb(payment(9, "100", "teller", 900_000))
    clock.advance(days=1)
    assert yesterday.rc == "00" and yesterday.business_date == DAY - timedelta(days=1)
    assert (await engine.reverse(reversal("100", yesterday.ntpd, 900_000, "000091"))).rc == "00"
    # Today: bank 100 teller 100,000 + 200,000 + 300,000 (the last reversed), bank 100 atm 400,000,
    # bank 101 mobile 500,000 (reversed) and 600,000.
    paid = {}
    for i, bank, channel in ((1, "100", "teller"), (2, "100", "teller"), (3, "100", "teller"), (4, "100", "atm"),
                             (5, "101", "mobile"), (6, "101", "mobile")):
        result = await engine.pay_pbb(payment(i, bank, channel, 100_000 * i))
        assert result.rc == "00", result
        paid[i] = result.ntpd
    assert (await engine.reverse(reversal("100", paid[3], 300_000, "000093"))).rc == "00"
    assert (await engine.reverse(reversal("101", paid[5], 500_000, "000095"))).rc == "00"

    # The last hour's answers, as the message log keeps them (only 'out' rows with an RC count).
    for rc, channel, n in (("00", "iso", 3), ("00", "http", 1), ("91", "iso", 2), ("96", "http", 1), ("14", "iso", 1)):
        for _ in range(n):
            await log_answer(db, rc, channel)
    await log_answer(db, "91", ago_s=2 * 3600)            # older than an hour
    await log_answer(db, "96", direction="in")            # a request, not an answer
    await log_answer(db, None, event="echo")              # the gateway's echo: no RC

    # Open work: two open reconciliation items (a third resolved), two tombstones (one resolved).
    report = await db.fetchval(
        "INSERT INTO recon_reports (business_date, bank_code, file_name, file_sha256, counts, report_csv)"
        " VALUES ($1, '100', 'r.csv', '\\x00', '{}', '') RETURNING id", DAY)
    for key, status in (("a", "open"), ("b", "open"), ("c", "resolved")):
        await db.execute(
            "INSERT INTO recon_items (business_date, bank_code, class, item_key, report_id, status, resolution,"
            " resolution_note, resolved_at) VALUES ($1, '100', 'missing_at_bank', $2, $3, $4, $5, $6, $7)",
            DAY, key, report, status, *(("accepted", "ok", datetime.now(UTC)) if status == "resolved" else (None,) * 3))
    for stan in ("000201", "000202"):
        await db.execute(
            "INSERT INTO tombstones (bank_code, stan, transmitted, transmitted_year, amount, business_date, created_at)"
            " VALUES ('100', $1, '1123021500', 2026, 1000, $2, now())", stan, DAY)
    await db.execute("INSERT INTO tombstone_resolutions (tombstone_id, resolution, resolution_note, resolved_by)"
                     " SELECT min(id), 'accepted', 'ok', 'dewi' FROM tombstones")

    # Two instances publish their connections; the second then stops renewing its snapshot.
    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    a = ConnectionPublisher(runtime_pool, config.database, lambda: [
        FakeConnection("iso-1", "100", "10.0.0.1:40001", t0, True, t0 + timedelta(minutes=5), 2),
        FakeConnection("iso-2", "101", "10.0.0.2:40002", t0 + timedelta(minutes=1), False, t0 + timedelta(minutes=6), 0),
    ], interval_s=5)
    b = ConnectionPublisher(runtime_pool, config.database, lambda: [
        FakeConnection("iso-1", "100", "10.0.0.1:40003", t0 + timedelta(minutes=2), True, t0 + timedelta(minutes=7), 1),
    ], interval_s=5, started_at=t0)
    assert b.instance != a.instance
    assert await a.publish() == 2 and await b.publish() == 1
    await db.execute("UPDATE gateway_instances SET updated_at = now() - interval '16 seconds' WHERE instance = $1",
                     b.instance)

    board = await dashboard.overview(ACTOR)

    assert (board.business_date, board.state) == (DAY, "open")
    assert board.totals == (
        ChannelTotals("100", "atm", 1, 400_000, 0, 0),
        ChannelTotals("100", "teller", 3, 600_000, 1, 300_000),
        ChannelTotals("101", "mobile", 2, 1_100_000, 1, 500_000),
    )
    assert board.total == ChannelTotals("", "", 6, 2_100_000, 2, 800_000)
    assert (board.total.net_count, board.total.net_amount) == (4, 1_300_000)
    assert board.answer_lines() == (AnswerLine("00", 3, 1), AnswerLine("14", 1, 0), AnswerLine("91", 2, 0),
                                    AnswerLine("96", 0, 1))
    assert [line.response_code for line in board.answer_lines() if line.alert] == ["91", "96"]
    assert (board.open_items, board.open_tombstones, board.open_work) == (2, 1, 3)
    fresh, stale = (a.instance, False), (b.instance, True)
    assert sorted((i.instance, i.stale) for i in board.instances) == sorted([fresh, stale])
    assert [(c.bank, c.instance, c.connection_id, c.peer, c.connected_at, c.signed_on, c.last_message_at,
             c.in_flight, c.stale) for c in board.connections] == [
        ("100", a.instance, "iso-1", "10.0.0.1:40001", t0, True, t0 + timedelta(minutes=5), 2, False),
        ("100", b.instance, "iso-1", "10.0.0.1:40003", t0 + timedelta(minutes=2), True, t0 + timedelta(minutes=7), 1,
         True),
        ("101", a.instance, "iso-2", "10.0.0.2:40002", t0 + timedelta(minutes=1), False, t0 + timedelta(minutes=6), 0,
         False),
    ]
    assert board.instance_connections(a.instance) == 2
    # The read is audited, in its own transaction.
    audits = await db.fetch("SELECT actor, action, target, detail::text, source FROM audit_log")
    assert [tuple(r) for r in audits] == [("dewi", "dashboard.view", "2026-11-23", '{"via": "session"}', "10.1.2.3")]


async def test_an_empty_day_is_open_with_nothing_and_91_96_at_zero(dashboard):
    board = await dashboard.overview(ACTOR)
    assert (board.state, board.totals, board.open_work, board.connections, board.instances) == ("open", (), 0, (), ())
    assert board.answer_lines() == (AnswerLine("91", 0, 0), AnswerLine("96", 0, 0))
    assert board.total == ChannelTotals("", "", 0, 0, 0, 0)


async def test_the_snapshot_is_replaced_each_round_and_withdrawn_at_stop(db, runtime_pool, config):
    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    current = [FakeConnection("iso-1", "100", "10.0.0.1:1", t0, False, t0, 0),
               FakeConnection("iso-2", "100", "10.0.0.1:2", t0, False, t0, 3)]
    mine = ConnectionPublisher(runtime_pool, config.database, lambda: list(current), interval_s=5)
    other = ConnectionPublisher(runtime_pool, config.database,
                                lambda: [FakeConnection("iso-1", "101", "10.0.0.2:1", t0, True, t0, 0)], interval_s=5,
                                started_at=t0)
    await other.publish()

    async def rows(instance: str) -> list[tuple]:
        return [tuple(r) for r in await db.fetch(
            "SELECT connection_id, bank_code, peer, signed_on, in_flight FROM iso_connections WHERE instance = $1"
            " ORDER BY connection_id", instance)]

    assert await mine.publish() == 2
    assert await rows(mine.instance) == [("iso-1", "100", "10.0.0.1:1", False, 0), ("iso-2", "100", "10.0.0.1:2", False, 3)]
    first = await db.fetchval("SELECT updated_at FROM gateway_instances WHERE instance = $1", mine.instance)
    # The next round: one connection closed, the other signed on; nothing else of the old snapshot remains.
    current[:] = [FakeConnection("iso-2", "100", "10.0.0.1:2", t0, True, t0 + timedelta(seconds=9), 1)]
    assert await mine.publish() == 1
    assert await rows(mine.instance) == [("iso-2", "100", "10.0.0.1:2", True, 1)]
    assert await db.fetchval("SELECT updated_at FROM gateway_instances WHERE instance = $1", mine.instance) > first
    # A peer that the log would have to escape is published the way the log writes it.
    current[:] = [FakeConnection("iso-3", "100", "bad\x00peer", t0, False, t0, 0)]
    await mine.publish()
    assert await rows(mine.instance) == [("iso-3", "100", "bad\\x00peer", False, 0)]
    # At stop: this instance's rows go, the other's stay.
    await mine.withdraw()
    assert await rows(mine.instance) == []
    assert await db.fetchval("SELECT count(*) FROM gateway_instances WHERE instance = $1", mine.instance) == 0
    assert await rows(other.instance) == [("iso-1", "101", "10.0.0.2:1", True, 0)]


async def test_an_abandoned_instance_is_purged_by_a_live_one(db, runtime_pool, config):
    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    gone = ConnectionPublisher(runtime_pool, config.database,
                               lambda: [FakeConnection("iso-1", "100", "p", t0, True, t0, 0)], interval_s=5, started_at=t0)
    await gone.publish()
    await db.execute("UPDATE gateway_instances SET updated_at = now() - interval '2 hours'")
    live = ConnectionPublisher(runtime_pool, config.database, list, interval_s=5)
    await live.publish()
    assert [r["instance"] for r in await db.fetch("SELECT instance FROM gateway_instances")] == [live.instance]
    assert await db.fetchval("SELECT count(*) FROM iso_connections") == 0


async def test_a_failed_round_is_logged_and_the_next_one_publishes(db, runtime_pool, config):
    calls = 0

    def snapshot() -> list[FakeConnection]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("listener busy")
        t = datetime.now(UTC)
        return [FakeConnection("iso-7", "100", "p", t, True, t, 0)]

    publisher = ConnectionPublisher(runtime_pool, config.database, snapshot, interval_s=1)
    task = asyncio.create_task(publisher.run())
    try:
        for _ in range(50):
            if await db.fetchval("SELECT count(*) FROM iso_connections WHERE instance = $1", publisher.instance):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no snapshot published after a failed round")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert calls >= 2


async def test_the_runtime_role_may_delete_snapshots_but_still_no_history(runtime_pool):
    async with runtime_pool.acquire() as conn:
        assert await conn.fetchval("SELECT has_table_privilege('iso_connections', 'DELETE')")
        assert await conn.fetchval("SELECT has_table_privilege('gateway_instances', 'UPDATE')")
        assert not await conn.fetchval("SELECT has_table_privilege('payments', 'DELETE')")
        assert not await conn.fetchval("SELECT has_table_privilege('message_log', 'DELETE')")
        assert not await conn.fetchval("SELECT has_table_privilege('iso_connections', 'UPDATE')")
