"""Concurrency over real TCP against ``gateway serve``: many requests in flight on one connection answered
out of order, many connections racing for one bill, a reversal racing its own payment, and back-pressure
(spec/iso8583.md "Transport and framing", spec/domain.md invariants 1, 4, 5).

Row locks taken by the test's own database transaction make a payment wait deterministically: the
payment blocks on ``SELECT … FOR UPDATE`` of its bill until the test rolls back. Locks are held well under
the gateway's lock and statement timeouts (``[database] lock_timeout_ms``, ``statement_timeout_ms``), which
the tests that hold them raise."""
from __future__ import annotations

import asyncio
import random
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from helpers.db import lock_bill, wait_until_blocked
from helpers.gateway import start

pytestmark = pytest.mark.integration

PAYABLE = date(2099, 8, 31)  # no penalty: the total due is the principal
AMOUNT = 150_000


def nop(i: int) -> str:
    return f"3275020002003{i:04d}0"


def bill(i: int) -> str:
    return nop(i) + "2026"


async def add_bills(db, count: int) -> list[int]:
    return [await add_pbb(db, nop=nop(i), due=PAYABLE) for i in range(count)]


async def test_twenty_in_flight_answered_out_of_order_matched_by_stan(make_gateway, db, db_url):
    ids = await add_bills(db, 20)
    # The payment waits for its locked bill while the inquiries are answered; a longer statement budget than
    # the default keeps a slow machine's inquiries from outlasting it (the payment would then be answered 91).
    gateway = await start(make_gateway, extra="[database]\nstatement_timeout_ms = 8000\n")
    locker = await asyncpg.connect(db_url)
    try:
        async with gateway.client(timeout_s=10) as bank:
            arrival: list[str] = []

            async def send(fields):
                answer = await bank.request(fields)
                arrival.append(fields["11"])
                return answer

            tx = await lock_bill(locker, ids[0])
            pay_req = bank.payment("pbb", bill(0), AMOUNT)
            pay = asyncio.create_task(send(pay_req))
            await wait_until_blocked(db, 1)
            inq_reqs = [bank.inquiry("pbb", bill(i)) for i in range(1, 20)]
            inquiries = await asyncio.wait_for(asyncio.gather(*(send(r) for r in inq_reqs)), 4)
            assert not pay.done(), "the payment was answered while its bill was locked"
            for request, answer in zip(inq_reqs, inquiries):
                assert answer["t"] == "0210" and answer["39"] == "00"
                assert (answer["11"], answer["7"], answer["61"]) == (request["11"], request["7"], request["61"])
                assert answer["4"] == f"{AMOUNT:012d}"
            await tx.rollback()
            paid = await asyncio.wait_for(pay, 5)
            assert paid["39"] == "00" and paid["11"] == pay_req["11"] and len(paid["47"]) == 18
            requested = [pay_req["11"]] + [r["11"] for r in inq_reqs]
            assert arrival != requested and arrival[-1] == pay_req["11"]
            assert sorted(arrival) == sorted(requested)
    finally:
        await locker.close()
    rows = await db.fetch("SELECT p.ntpd, p.stan FROM payments p")
    assert [(r["ntpd"], r["stan"]) for r in rows] == [(paid["47"], pay_req["11"])]
    assert await db.fetchval("SELECT count(*) FROM active_payments WHERE bill_id = $1", ids[0]) == 1


async def test_fifty_connections_race_to_pay_one_bill(make_gateway, db):
    bill_id = (await add_bills(db, 1))[0]
    gateway = make_gateway(extra="max_connections_per_address = 50")  # all 50 come from 127.0.0.1
    clients = [await gateway.client(timeout_s=20).connect() for _ in range(50)]
    try:
        stans = random.sample(range(1, 999_999), 50)
        requests = [c.payment("pbb", bill(0), AMOUNT, stan=f"{s:06d}") for c, s in zip(clients, stans)]
        answers = await asyncio.gather(*(c.request(r) for c, r in zip(clients, requests)))
    finally:
        for c in clients:
            await c.close()
    codes = sorted(a["39"] for a in answers)
    assert codes == ["00"] + ["88"] * 49
    winner = next(a for a in answers if a["39"] == "00")
    # Same bank: the losers learn the winner's NTPD (field 47) so a lost answer can be recovered.
    assert {a.get("47") for a in answers} == {winner["47"]}
    rows = await db.fetch("SELECT id, ntpd, stan FROM payments")
    assert [r["ntpd"] for r in rows] == [winner["47"]] and rows[0]["stan"] == winner["11"]
    active = await db.fetch("SELECT bill_id, payment_id FROM active_payments")
    assert [(r["bill_id"], r["payment_id"]) for r in active] == [(bill_id, rows[0]["id"])]
    assert await db.fetchval("SELECT status FROM bills WHERE id = $1", bill_id) == "paid"


async def test_reversal_racing_its_own_payment(gateway, db):
    count = 10
    ids = await add_bills(db, count)
    async with gateway.client(timeout_s=10) as payer, gateway.client(timeout_s=10) as reverser:
        pairs = []
        for i in range(count):
            payment = payer.payment("pbb", bill(i), AMOUNT)
            pairs.append((payment, reverser.reversal(payment)))
        # All 20 at once: each bill's 0200 and 0400 on two connections, landing in either order.
        results = await asyncio.gather(*(
            asyncio.gather(payer.request(p), reverser.request(r)) for p, r in pairs))
    outcomes = []
    for i, ((payment, reversal), (pay, rev)) in enumerate(zip(pairs, results)):
        assert (pay["t"], rev["t"]) == ("0210", "0410")
        assert rev["39"] == "00", f"bill {i}: reversal answered {rev['39']}"
        row = await db.fetchrow(
            "SELECT p.id, p.ntpd, r.id AS reversal_id FROM payments p LEFT JOIN reversals r ON r.payment_id = p.id"
            " WHERE p.stan = $1 AND p.transmitted = $2", payment["11"], payment["7"])
        tombstone = await db.fetchval(
            "SELECT count(*) FROM tombstones WHERE stan = $1 AND transmitted = $2", payment["11"], payment["7"])
        status = await db.fetchval("SELECT status FROM bills WHERE id = $1", ids[i])
        active = await db.fetchval("SELECT count(*) FROM active_payments WHERE bill_id = $1", ids[i])
        if pay["39"] == "00":
            # Paid, then reversed: the reversal found the payment.
            assert row is not None and row["ntpd"] == pay["47"] and row["reversal_id"] is not None, f"bill {i}"
            assert tombstone == 0
            outcomes.append("paid-then-reversed")
        else:
            # The reversal came first: a tombstone, and the payment refused.
            assert pay["39"] == "12", f"bill {i}: payment answered {pay['39']}"
            assert row is None and tombstone == 1, f"bill {i}"
            outcomes.append("tombstone-then-refused")
        assert (status, active) == ("unpaid", 0), f"bill {i}: {outcomes[-1]} left the bill {status}"
    assert len(outcomes) == count
    assert await db.fetchval("SELECT count(*) FROM active_payments") == 0
    assert await db.fetchval("SELECT count(*) FROM bills WHERE status = 'paid'") == 0


async def test_back_pressure_max_in_flight(make_gateway, db, db_url):
    ids = await add_bills(db, 3)
    # Patient database waits, so that only the test's own locks decide when the payments go on.
    gw = make_gateway(extra="max_in_flight = 2\n[database]\nlock_timeout_ms = 20000\nstatement_timeout_ms = 20000")
    lock1 = await asyncpg.connect(db_url)
    lock2 = await asyncpg.connect(db_url)
    try:
        async with gw.client(timeout_s=10) as bank, gw.client(timeout_s=10) as other:
            tx1 = await lock_bill(lock1, ids[0])
            tx2 = await lock_bill(lock2, ids[1])
            p1 = asyncio.create_task(bank.request(bank.payment("pbb", bill(0), AMOUNT)))
            p2 = asyncio.create_task(bank.request(bank.payment("pbb", bill(1), AMOUNT)))
            await wait_until_blocked(db, 2)
            third = asyncio.create_task(bank.request(bank.inquiry("pbb", bill(2))))
            # Another connection is served meanwhile; this one is not read any further.
            elsewhere = await asyncio.wait_for(other.request(other.inquiry("pbb", bill(2))), 2)
            assert elsewhere["39"] == "00"
            await asyncio.sleep(0.5)
            assert not third.done() and not p1.done() and not p2.done()
            await tx1.rollback()
            first = await asyncio.wait_for(p1, 3)
            assert first["39"] == "00"
            answered = await asyncio.wait_for(third, 3)
            assert answered["39"] == "00" and answered["4"] == f"{AMOUNT:012d}"
            assert not p2.done()
            await tx2.rollback()
            second = await asyncio.wait_for(p2, 3)
            assert second["39"] == "00"
    finally:
        await lock1.close()
        await lock2.close()
    assert await db.fetchval("SELECT count(*) FROM payments") == 2
