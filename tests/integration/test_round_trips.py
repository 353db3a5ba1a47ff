"""How many statements a request sends to PostgreSQL, counted by asyncpg's query logger on every pooled
connection (issue: an inquiry one read and one asynchronously committed write, a payment at most three), and
the payment's one-statement posting refusing, with nothing written, whatever changed since its read."""
from __future__ import annotations

import asyncio
import json
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import IsoOrigin, MessageKey, OriginalRef, PbbInquiry, PbbPayment, Reversal
from gateway.store import money
from gateway.store.db import GatewayConnection

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
TODAY = date(2026, 11, 23)  # the business date of conftest's DEFAULT_NOW


def pay(stan: str, year: int = 2026, amount: int = 154_500) -> PbbPayment:
    key = MessageKey.iso(stan, "1123021500", "02", f"{stan}|{amount}|{year}")
    return PbbPayment(bank="110", nop=NOP, tax_year=year, amount=amount, ntb="NTB" + stan, channel="atm", key=key,
                      origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="R" + stan, terminal_id="ATM1"))


def inquiry(stan: str, year: int = 2026) -> PbbInquiry:
    return PbbInquiry("110", NOP, year, key=MessageKey.iso(stan, "1123021500", "01", f"{stan}|{year}"))


@pytest.fixture
async def counted(db_url, clock, config):
    statements: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda q: statements.append(q.query.strip().split()[0].upper()))

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4, init=init,
                                     connection_class=GatewayConnection)
    yield Engine(ServiceContext(pool=pool, clock=clock, config=config)), statements
    await pool.close()


async def test_an_inquiry_is_one_read_and_one_write_and_a_payment_two_statements(counted, db):
    engine, statements = counted
    for year in (2024, 2025, 2026):
        await add_pbb(db, year=year, due=date(year, 8, 31))
    # The first payment of a business date creates the date's row (the transaction path) and warms the
    # statement cache; what follows is the path of every other payment of the day.
    assert (await engine.pay_pbb(pay("000001", 2024, 150_000 + 150_000 * 24 // 100))).rc == "00"

    statements.clear()
    answer = await engine.inquire_pbb(inquiry("000002"))
    assert answer.rc == "00"
    assert statements == ["SELECT", "WITH"]  # the read, then the quote and the key in one statement

    statements.clear()
    repeat = await engine.inquire_pbb(inquiry("000002"))
    assert (repeat.rc, repeat.repeated) == ("00", True)
    assert statements == ["SELECT"]  # a repeat is answered from its read

    statements.clear()
    paid = await engine.pay_pbb(pay("000003"))
    assert paid.rc == "00"
    assert statements == ["SELECT", "WITH"]  # no BEGIN, no COMMIT: the posting commits by itself

    statements.clear()
    again = await engine.pay_pbb(pay("000003"))
    assert (again.rc, again.ntpd, again.repeated) == ("00", paid.ntpd, True)
    assert "BEGIN;" in statements  # a repeat is the transaction path's to answer

    rows = await db.fetch("SELECT key, operation FROM message_keys ORDER BY id")
    assert [r["operation"] for r in rows] == ["pbb-payment", "pbb-inquiry", "pbb-payment"]
    assert await db.fetchval("SELECT count(*) FROM quotes") == 1
    assert await db.fetchval("SELECT count(*) FROM payments") == 2
    ledger = await db.fetch("SELECT account, sum(amount)::bigint AS s FROM ledger_entries GROUP BY account ORDER BY 1")
    assert [tuple(r) for r in ledger] == [("bank", 186_000 + 154_500), ("penalty", -(36_000 + 4_500)),
                                          ("principal", -300_000)]


async def test_the_inquiry_write_does_not_wait_for_the_disk(db):
    """The statement's set_config(…, true) reaches the commit it makes: seen from inside, the setting is off
    during the statement and back on after it."""
    inside = await db.fetchval(
        "WITH s AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v)"
        " SELECT current_setting('synchronous_commit') FROM s")
    assert inside == "off"
    assert await db.fetchval("SHOW synchronous_commit") == "on"
    assert "set_config('synchronous_commit', 'off', true)" in money._QUOTE_AND_KEY


async def _prepared(engine: Engine, db, stan: str) -> tuple[money.NewPayment, object]:
    """A payment as the fast path would post it, and the bill's updated_at as its read saw it."""
    bill = await db.fetchrow("SELECT id, updated_at FROM bills WHERE tax_year = 2026")
    p = money.NewPayment(
        ntpd=f"26112310000000{stan[-4:]}", bill_id=bill["id"], tax="PBB", bank="110", channel="atm", via="iso",
        ntb="NTB", terminal_id="ATM1", rrn=None, stan=stan, transmitted="1123021500", transmitted_year=2026,
        principal=150_000, penalty=4_500, months_late=3, quote_id=None, business_date=TODAY,
        paid_at=engine.ctx.clock.now())
    return p, bill["updated_at"]


async def test_the_posting_writes_nothing_when_its_read_is_out_of_date(counted, db):
    engine, _ = counted
    await add_pbb(db)
    await db.execute("INSERT INTO business_dates (business_date) VALUES ($1)", TODAY)
    key = ("iso", "k1", b"h" * 32, "pbb-payment", json.dumps({"rc": "00"}))

    async with engine.ctx.pool.acquire() as conn:
        # A reversal of this original arrived between the read and the posting: its tombstone wins.
        p, seen = await _prepared(engine, db, "000001")
        await engine.reverse(Reversal("110", 154_500, MessageKey.iso("000009", "1123021500", "04", "r"),
                                      original=OriginalRef("000001", "1123021500", "110")))
        posted = await money.post_payment(conn, p, seen, key, None)
        assert (posted.guarded, posted.payment_id) == (False, None)
        await _nothing_written_but_the_reversal(db)

        # The bill was re-imported (updated_at moved) since the read.
        p, seen = await _prepared(engine, db, "000002")
        await db.execute("UPDATE bills SET principal = 160000, updated_at = now() WHERE tax_year = 2026")
        posted = await money.post_payment(conn, p, seen, key, None)
        assert (posted.guarded, posted.payment_id) == (False, None)

        # The date began closing.
        p, seen = await _prepared(engine, db, "000003")
        await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", TODAY)
        posted = await money.post_payment(conn, p, seen, key, None)
        assert (posted.guarded, posted.payment_id) == (False, None)
        await db.execute("UPDATE business_dates SET state = 'open' WHERE business_date = $1", TODAY)

        # The message key is taken (a repeat in flight committed first).
        await db.execute("INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)"
                         " VALUES ('iso', '110', 'k1', $1, 'pbb-payment', '{}')", b"h" * 32)
        p, seen = await _prepared(engine, db, "000004")
        posted = await money.post_payment(conn, p, seen, key, None)
        assert (posted.guarded, posted.key_taken, posted.payment_id) == (True, True, None)
        assert await db.fetchval("SELECT count(*) FROM payments") == 0
        assert await db.fetchval("SELECT status FROM bills WHERE tax_year = 2026") == "unpaid"

        # The bill's row or the original's lock held by another session (an import, a reversal of the same
        # original): the guard says no at once, never waits (this pool has no lock_timeout: a wait would
        # hang until wait_for gives up).
        p, seen = await _prepared(engine, db, "000005")
        async with db.transaction():
            await db.execute("SELECT 1 FROM bills WHERE tax_year = 2026 FOR UPDATE")
            posted = await asyncio.wait_for(money.post_payment(conn, p, seen, ("iso", "k2") + key[2:], None), 5)
            assert (posted.guarded, posted.payment_id) == (False, None)
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                             money.origin_lock_key("110", "000005", "1123021500", 2026))
            posted = await asyncio.wait_for(money.post_payment(conn, p, seen, ("iso", "k2") + key[2:], None), 5)
            assert (posted.guarded, posted.payment_id) == (False, None)

        # Nothing changed: it posts.
        p, seen = await _prepared(engine, db, "000005")
        posted = await money.post_payment(conn, p, seen, ("iso", "k2") + key[2:], None)
        assert posted.guarded and posted.payment_id is not None
    assert await db.fetchval("SELECT status FROM bills WHERE tax_year = 2026") == "paid"
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 3


async def _nothing_written_but_the_reversal(db) -> None:
    assert await db.fetchval("SELECT count(*) FROM tombstones") == 1
    assert await db.fetchval("SELECT count(*) FROM payments") == 0
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 0
    assert await db.fetchval("SELECT count(*) FROM message_keys WHERE operation = 'pbb-payment'") == 0
    assert await db.fetchval("SELECT status FROM bills WHERE tax_year = 2026") == "unpaid"
