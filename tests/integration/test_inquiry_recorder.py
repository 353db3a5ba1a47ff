"""Inquiries' quotes and keys written behind their answers (gateway.service.inquiry_recorder; spec/domain.md
"Quotes"): the inquiry's one round trip, the batch that follows, a payment or a repeat that meets a quote or a
key still pending, and batches the database refuses or cannot take. The recorder's writes are held back by a
gate where a test needs them pending."""
from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from billdata import add_pbb
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.inquiry_recorder import InquiryRecorder
from gateway.service.requests import IsoOrigin, MessageKey, OriginalRef, PbbInquiry, PbbPayment, Reversal
from gateway.store import money
from gateway.store.db import GatewayConnection
from helpers.dates import jakarta

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
F7 = "1123021500"


class Gated(InquiryRecorder):
    """A recorder whose batches wait for ``gate`` (the database being slow to take them)."""

    def __init__(self, pool: asyncpg.Pool, **kwargs) -> None:
        super().__init__(pool, acquire_timeout_s=kwargs.pop("acquire_timeout_s", 2.0), write_timeout_s=5.0, **kwargs)
        self.gate = asyncio.Event()

    async def _write(self, batch) -> None:
        await self.gate.wait()
        await super()._write(batch)


def inquiry(stan: str, year: int = 2026, content: str | None = None) -> PbbInquiry:
    return PbbInquiry("110", NOP, year, key=MessageKey.iso(stan, F7, "02", content or f"341019|{NOP}{year}"))


def pay(stan: str, amount: int, year: int = 2026) -> PbbPayment:
    key = MessageKey.iso(stan, F7, "02", f"541019|{amount}|{NOP}{year}")
    return PbbPayment(bank="110", nop=NOP, tax_year=year, amount=amount, ntb="NTB" + stan, channel="atm", key=key,
                      origin=IsoOrigin(stan=stan, transmitted=F7, rrn="R" + stan, terminal_id="ATM1"))


def kinds(statements: list[str]) -> list[str]:
    return [q.split()[0].upper() for q in statements]


@pytest.fixture
async def counted(db_url):
    statements: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda q: statements.append(q.query.strip()))

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=8, init=init, connection_class=GatewayConnection)
    yield pool, statements
    await pool.close()


@pytest.fixture
async def gated(counted, clock, config):
    pool, statements = counted
    recorder = Gated(pool)
    engine = Engine(ServiceContext(pool=pool, clock=clock, config=config, inquiries=recorder))
    yield engine, recorder, statements
    recorder.gate.set()
    await recorder.close()


async def test_an_inquiry_answers_after_its_read_and_its_quote_and_key_follow(gated, db):
    engine, recorder, statements = gated
    for year in (2023, 2024, 2025, 2026):
        await add_pbb(db, year=year, due=date(year, 8, 31))
    # A first inquiry and its batch warm the statement cache (asyncpg's type look-ups are statements too).
    recorder.gate.set()
    assert (await engine.inquire_pbb(inquiry("000003", 2023))).rc == "00"
    await recorder.close()
    recorder.gate.clear()
    statements.clear()
    answers = [await engine.inquire_pbb(inquiry(f"00000{year - 2020}", year)) for year in (2024, 2025, 2026)]
    assert [a.rc for a in answers] == ["00", "00", "00"]
    # Each answer waited for its read only; nothing is written yet.
    assert kinds(statements) == ["SELECT", "SELECT", "SELECT"]
    assert await db.fetchval("SELECT count(*) FROM quotes") == 1  # the first inquiry's
    assert recorder.pending == 3

    statements.clear()
    recorder.gate.set()
    await recorder.close()
    # The first batch held the first inquiry (its write had begun); the two that came meanwhile, the next.
    assert kinds(statements) == ["WITH", "WITH"]
    assert (recorder.pending, recorder.written, recorder.dropped) == (0, 4, 0)
    quotes = await db.fetch("SELECT b.tax_year, q.bank_code, q.principal, q.penalty, q.total, q.months_late,"
                            " q.expires_at - q.created_at AS ttl FROM quotes q JOIN bills b ON b.id = q.bill_id"
                            " WHERE b.tax_year > 2023 ORDER BY b.tax_year")
    assert [tuple(q) for q in quotes] == [
        (2024, "110", 150_000, 36_000, 186_000, 24, timedelta(minutes=15)),
        (2025, "110", 150_000, 22_500, 172_500, 15, timedelta(minutes=15)),
        (2026, "110", 150_000, 4_500, 154_500, 3, timedelta(minutes=15))]
    keys = await db.fetch("SELECT channel, bank_code, key, operation, answer->>'rc' AS rc FROM message_keys"
                    " WHERE key NOT LIKE '000003:%' ORDER BY id")
    assert [tuple(k) for k in keys] == [
        ("iso", "110", f"00000{n}:2026{F7}:02", "pbb-inquiry", "00") for n in (4, 5, 6)]
    # The batch commits without waiting for the disk, as the single write did.
    assert "set_config('synchronous_commit', 'off', true)" in money._QUOTES_AND_KEYS


async def test_a_payment_after_its_inquiry_waits_for_the_quote_still_pending(gated, db, clock):
    engine, recorder, _ = gated
    await add_pbb(db, principal=1_000_000, due=date(2026, 8, 31))
    clock.at = jakarta(2026, 10, 31, 23, 55)
    shown = await engine.inquire_pbb(inquiry("000001"))
    assert (shown.rc, shown.amount.total) == ("00", 1_020_000)
    clock.at = jakarta(2026, 11, 1, 0, 5)  # a new month of penalty: the total is 1.030.000 now
    paying = asyncio.create_task(engine.pay_pbb(pay("000002", 1_020_000)))
    await asyncio.sleep(0.2)
    assert not paying.done()  # waiting for the batch that holds the quote, not answered 13 without it
    recorder.gate.set()
    paid = await paying
    assert (paid.rc, paid.quote_used, paid.amount.months_late) == ("00", True, 2)
    row = await db.fetchrow("SELECT principal, penalty, quote_id IS NOT NULL AS quoted FROM payments")
    assert tuple(row) == (1_000_000, 20_000, True)


async def test_a_repeat_of_a_pending_inquiry_is_answered_as_stored_and_its_key_is_not_reused(gated, db):
    engine, recorder, statements = gated
    await add_pbb(db)
    first = await engine.inquire_pbb(inquiry("000007"))
    assert (first.rc, first.repeated) == ("00", False)
    statements.clear()
    again = await engine.inquire_pbb(inquiry("000007"))
    assert (again.rc, again.repeated, again.amount, again.quote) == ("00", True, first.amount, first.quote)
    assert statements == []  # answered from the pending write, without the database
    # The same key with other content is a reused key.
    assert (await engine.inquire_pbb(inquiry("000007", content="341019|other"))).rc == "94"
    # So is a payment under the inquiry's key (0200 both): it waits for the key to be written, then meets it.
    paying = asyncio.create_task(engine.pay_pbb(pay("000007", 154_500)))
    reversing = asyncio.create_task(engine.reverse(Reversal(
        "110", 154_500, MessageKey("iso", f"000007:2026{F7}:02", "r"), original=OriginalRef("000099", F7, "110"))))
    await asyncio.sleep(0.2)
    assert not paying.done() and not reversing.done()
    recorder.gate.set()
    assert ((await paying).rc, (await reversing).rc) == ("94", "94")
    assert await db.fetchval("SELECT count(*) FROM payments") == 0
    assert await db.fetchval("SELECT count(*) FROM quotes") == 1
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 1


async def test_two_answers_under_one_key_before_the_write_queue_one_key(gated, db):
    """A bank that sends the same inquiry twice at once: both read before either is queued; the second to
    be queued is answered as the repeat of the first."""
    engine, recorder, _ = gated
    await add_pbb(db)
    one, two = await asyncio.gather(engine.inquire_pbb(inquiry("000003")), engine.inquire_pbb(inquiry("000003")))
    assert {one.rc, two.rc} == {"00"} and sorted([one.repeated, two.repeated]) == [False, True]
    recorder.gate.set()
    await recorder.close()
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 1


async def test_a_row_the_database_refuses_costs_only_itself(counted, db):
    pool, statements = counted
    await add_pbb(db)
    bill_id = await db.fetchval("SELECT id FROM bills")
    recorder = InquiryRecorder(pool, acquire_timeout_s=2.0, write_timeout_s=5.0)
    created = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)

    def quote(bill: int, principal: int) -> money.NewQuote:
        return money.NewQuote(bill_id=bill, principal=principal, penalty=0, months_late=0, created_at=created,
                              expires_at=created + timedelta(minutes=15))

    # Queued together (no await between): one batch, whose second quote names a bill that does not exist.
    recorder.add("110", ("PBB", "a"), quote(bill_id, 100), None)
    recorder.add("110", ("PBB", "b"), quote(bill_id + 999, 200), None)
    recorder.add("110", ("PBB", "c"), quote(bill_id, 300), ("iso", "k3", b"h" * 32, "pbb-inquiry", '{"rc": "00"}'))
    await recorder.close()
    # The batch, then each row on its own.
    assert sum("INSERT INTO quotes" in q for q in statements) == 4
    assert (recorder.written, recorder.dropped) == (2, 1)
    assert [r[0] for r in await db.fetch("SELECT principal FROM quotes ORDER BY principal")] == [100, 300]
    assert await db.fetchval("SELECT key FROM message_keys") == "k3"


async def test_a_batch_the_database_cannot_take_is_dropped_and_the_next_is_written(db_url, db):
    await add_pbb(db)
    bill_id = await db.fetchval("SELECT id FROM bills")
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        recorder = InquiryRecorder(pool, acquire_timeout_s=0.2, write_timeout_s=5.0)
        created = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
        quote = money.NewQuote(bill_id=bill_id, principal=1, penalty=0, months_late=0, created_at=created,
                               expires_at=created + timedelta(minutes=15))
        async with pool.acquire():  # the only connection is taken: the batch cannot get one in time
            recorder.add("110", ("PBB", "a"), quote, None)
            await recorder.close()
        assert (recorder.written, recorder.dropped, recorder.pending) == (0, 1, 0)
        assert await recorder.settled(("PBB", "a"), None, 5.0) is None  # nothing left to wait for
        recorder.add("110", ("PBB", "a"), quote, None)
        await recorder.close()
        assert (recorder.written, recorder.dropped) == (1, 1)
        assert await db.fetchval("SELECT count(*) FROM quotes") == 1
    finally:
        await pool.close()
