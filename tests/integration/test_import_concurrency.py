"""Payments flow while a bill import runs (spec/operations.md "PBB-P2 bills": short transactions).

A 50,000-row re-import changes the amount and name of every bill while bills it is updating are paid
through the real payment engine, on a pool with the request timeouts (statement 1 s, lock 0.5 s, the
runtime role). Between batches the import holds no bill lock: at every batch boundary a probe locks
sample bills of committed and of coming batches with NOWAIT, and payments made there are approved.
"""
from __future__ import annotations

import asyncio
import io
import itertools
from pathlib import Path

import asyncpg
import pytest

from gateway.bills.importer import import_file
from gateway.bills.loader import BATCH_ROWS, Batch
from gateway.bills.rows import PBB_COLUMNS
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import IsoOrigin, MessageKey, PbbPayment
from gateway.store.db import create_pool

pytestmark = pytest.mark.integration

BILLS = 50_000
YEAR = 2026
# Not yet due on the test clock's date (2026-11-23): no penalty, the amount due is the principal.
DUE = "2026-12-31"
# Paid by free-running payers while the import runs (every 1000th bill, across all batches).
RACED = [137 + 1000 * k for k in range(BILLS // 1000)]
# Sample bills locked with NOWAIT at every batch boundary; nobody pays them.
PROBED = list(range(0, BILLS, 500))
# After these batches the hook pays a bill of the batch just committed and one of a batch to come.
HOOK_BATCHES = (5, 15)


def nop(i: int) -> str:
    return f"3275010001{i // 9999 + 1:03d}{i % 9999 + 1:04d}0"


def key(i: int) -> str:
    return nop(i) + str(YEAR)


def old_amount(i: int) -> int:
    return 100_000 + i


def new_amount(i: int) -> int:
    return 200_000 + i


def old_name(i: int) -> str:
    return f"WAJIB PAJAK {i}"


def new_name(i: int) -> str:
    return f"WAJIB PAJAK {i} BARU"


def write_file(path: Path, amount, name) -> str:
    lines = [",".join(PBB_COLUMNS)]
    lines += [f"{nop(i)},{YEAR},{name(i)},JL. MAWAR {i},JATIBENING,PONDOKGEDE,100,50,{amount(i)},{DUE},"
              for i in range(BILLS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


class Payer:
    """Pays bills through the engine as a bank would: the amount it knows, then the new one on RC 13."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.stans = itertools.count(1)
        self.answers: list[tuple[int, int, str]] = []     # (bill, amount tried, rc)

    async def pay(self, i: int, amount: int) -> str:
        stan = f"{next(self.stans):06d}"
        request = PbbPayment(
            bank="110", nop=nop(i), tax_year=YEAR, amount=amount, ntb="NTB" + stan, channel="atm",
            key=MessageKey.iso(stan, "1123021500", "02", f"{i}|{amount}"),
            origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="RRN" + stan, terminal_id="ATM00001"))
        rc = (await self.engine.pay_pbb(request)).rc
        self.answers.append((i, amount, rc))
        return rc

    async def pay_known_amount(self, i: int) -> None:
        if await self.pay(i, old_amount(i)) == "13":     # the import changed the amount meanwhile
            await self.pay(i, new_amount(i))


async def test_payments_flow_while_an_import_updates_their_bills(db, db_url, config, clock, tmp_path):
    first = write_file(tmp_path / "bills.csv", old_amount, old_name)
    report = await import_file(db, "pbb", first, strict=False, region_code="3275", err=io.StringIO())
    assert (report.loaded, report.exit_code) == (BILLS, 0)
    changed = write_file(tmp_path / "bills_changed.csv", new_amount, new_name)

    pool = await create_pool(config.database, db_url)          # runtime role, request timeouts
    probe = await asyncpg.connect(db_url)
    try:
        assert await pool.fetchval("SHOW lock_timeout") == "500ms"
        assert await pool.fetchval("SHOW statement_timeout") == "1s"
        payer = Payer(Engine(ServiceContext(pool=pool, clock=clock, config=config)))
        raced_done = asyncio.Condition()
        raced_count = 0
        racing = True
        boundaries: list[Batch] = []
        probed_locks: list[int] = []
        hook_paid: dict[int, str] = {}         # bill -> rc
        hook_amounts: dict[int, int] = {}      # bill -> the amount it was paid at

        async def race() -> None:
            nonlocal raced_count, racing
            try:
                for i in RACED:
                    await payer.pay_known_amount(i)
                    async with raced_done:
                        raced_count += 1
                        raced_done.notify_all()
            finally:
                async with raced_done:
                    racing = False
                    raced_done.notify_all()

        async def after_batch(batch: Batch) -> None:
            boundaries.append(batch)
            # The import is between two transactions: no bill may be locked by it, committed or to come.
            async with probe.transaction():
                locked = await probe.fetch(
                    "SELECT id FROM bills WHERE tax = 'PBB' AND bill_key = ANY($1::text[]) FOR NO KEY UPDATE NOWAIT",
                    [key(i) for i in PROBED])
            probed_locks.append(len(locked))
            if batch.number in HOOK_BATCHES:
                done = (batch.number - 1) * BATCH_ROWS + 11           # updated by the batch just committed
                coming = (batch.number + 1) * BATCH_ROWS + 11         # updated two batches later
                assert batch.first_key <= key(done) <= batch.last_key
                hook_amounts[done], hook_amounts[coming] = new_amount(done), old_amount(coming)
                hook_paid[done] = await payer.pay(done, new_amount(done))
                hook_paid[coming] = await payer.pay(coming, old_amount(coming))
            if batch.number % 4 == 0:
                # Interleave for certain: one more raced payment completes before the next batch starts.
                async with raced_done:
                    target = raced_count + 1
                    await asyncio.wait_for(raced_done.wait_for(lambda: raced_count >= target or not racing), 60)

        racer = asyncio.create_task(race())
        err = io.StringIO()
        try:
            report = await import_file(db, "pbb", changed, strict=False, region_code="3275", err=err,
                                       after_batch=after_batch)
        finally:
            await racer
    finally:
        await probe.close()
        await pool.close()

    assert report.stopped is None, report.stopped        # e.g. a probe that met a lock of the import

    # Every payment was answered by the money rules, none with RC 91: only 00, or 13 for an amount the
    # import had just changed (then the new amount was approved).
    assert {rc for _, _, rc in payer.answers} <= {"00", "13"}, payer.answers
    assert all(rc == "00" for rc in hook_paid.values()), hook_paid
    retried = {i for i, _, rc in payer.answers if rc == "13"}
    assert sorted(i for i, _, rc in payer.answers if rc == "00") == sorted(RACED + list(hook_paid))
    assert all(amount == new_amount(i) for i, amount, rc in payer.answers if i in retried and rc == "00")

    # Batches of BATCH_ROWS bills in key order, each committed, the probe never met a lock.
    assert len(boundaries) == BILLS // BATCH_ROWS
    assert [b.rows for b in boundaries] == [BATCH_ROWS] * len(boundaries)
    assert [(b.first_key, b.last_key) for b in boundaries] == [
        (key(n * BATCH_ROWS), key((n + 1) * BATCH_ROWS - 1)) for n in range(len(boundaries))]
    assert probed_locks == [len(PROBED)] * len(boundaries)

    # Paid bills keep status and the amount they were paid at; the rest took the file's values.
    paid = {r["bill_key"]: r for r in await db.fetch(
        "SELECT b.bill_key, p.ntpd, p.principal FROM payments p"
        " JOIN active_payments a ON a.payment_id = p.id JOIN bills b ON b.id = a.bill_id")}
    paid_bills = sorted(RACED + list(hook_paid))
    assert sorted(paid) == sorted(key(i) for i in paid_bills)
    rows = {r["bill_key"]: tuple(r)[1:] for r in await db.fetch(
        "SELECT bill_key, taxpayer_name, principal, status FROM bills WHERE tax = 'PBB'")}
    expected = {}
    for i in range(BILLS):
        if key(i) in paid:
            expected[key(i)] = (new_name(i), paid[key(i)]["principal"], "paid")
        else:
            expected[key(i)] = (new_name(i), new_amount(i), "unpaid")
    assert rows == expected
    # A bill paid before its batch reached it was paid at the old amount: a conflict of the import.
    before = [i for i in paid_bills if paid[key(i)]["principal"] == old_amount(i)]
    after = [i for i in paid_bills if paid[key(i)]["principal"] == new_amount(i)]
    assert sorted(before + after) == paid_bills
    # The hook's payments: the bill already updated was paid at the new amount, the other at the old one.
    assert {i: paid[key(i)]["principal"] for i in hook_paid} == hook_amounts
    assert err.getvalue().splitlines() == [f"{changed}: {BILLS} rows read"] + [
        f"{changed}:{i + 2}: conflict: bill has an active payment (NTPD {paid[key(i)]['ntpd']}); "
        "status and amount kept" for i in before
    ] + [f"loaded 0, updated {BILLS - len(before)}, invalid 0, conflicts {len(before)}"]
    assert (report.conflicts, report.exit_code) == (len(before), 1 if before else 0)
