"""A wait on one bill never delays requests for other bills (spec/domain.md invariant 3).

A session outside the gateway (an import, a DBA) holds one bill's row lock. Many payments of that bill arrive
at once — more than the gateway's pool has connections — together with payments of other bills: the other
bills are approved (00, not 91), the locked bill's payments are answered 91 within the bound and none of them
is posted; once the lock is released the bill is paid once.
"""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from .harness import Bank, Report, check_answers, check_database, check_message_log, seed_bills

pytestmark = pytest.mark.integration

LOCKED_PAYMENTS = 40   # > pool_max = 20
OTHER_PAYMENTS = 40


async def test_payments_of_a_locked_bill_do_not_delay_other_bills(make_gateway, db, db_url):
    report = Report("locked bill")
    gw = make_gateway()
    locked, *others = await seed_bills(db, 1 + OTHER_PAYMENTS + 5)
    others, spare = others[:OTHER_PAYMENTS], others[OTHER_PAYMENTS:]
    bank = await Bank(gw, iso_connections=4).open()
    locker = await asyncpg.connect(db_url)
    try:
        assert (await bank.pay(spare[0])).rc == "00"  # warm: the pool is up
        lock = locker.transaction()
        await lock.start()
        await locker.execute("SELECT id FROM bills WHERE bill_key = $1 FOR UPDATE", locked.bill_id)
        locked_at = time.monotonic()
        waiting = [asyncio.create_task(bank.pay(locked)) for _ in range(LOCKED_PAYMENTS)]
        await asyncio.sleep(0.05)  # the locked bill's payments are in, holding whatever they hold
        paid = await asyncio.gather(*(bank.pay(bill) for bill in others))
        on_locked = await asyncio.gather(*waiting)
        report.figures["lock_held_s"] = round(time.monotonic() - locked_at, 2)
        report.check(await db.fetchval(
            "SELECT count(*) FROM payments p JOIN bills b ON b.id = p.bill_id WHERE b.bill_key = $1",
            locked.bill_id) == 0, "a payment of the locked bill was posted while its row was locked")
        await lock.rollback()

        check_answers(report, paid, allowed={"00"}, label="other_bills")
        check_answers(report, on_locked, allowed={"91"}, label="locked_bill")
        # Released: the bill is paid, once (a repeat of one of the 91s is processed afresh).
        first = await bank.repeat(on_locked[0], kind="settle")
        report.check(first.rc == "00", f"payment of the released bill: {first.describe()}")
        second = await bank.repeat(on_locked[1], kind="settle")
        report.check(second.rc == "88", f"a second payment of the paid bill: {second.describe()}")
        report.check(gw.proc.poll() is None, "the gateway process exited")
        await check_database(report, db, bank)
        await check_message_log(report, db, bank)
    finally:
        await locker.close()
        await bank.close()
    report.assert_clean()
