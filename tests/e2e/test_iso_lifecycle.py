"""Process lifecycle of ``gateway serve`` seen from the banks' side: graceful SIGTERM with requests in
flight, and SIGHUP reloads of the bank list (spec/iso8583.md "Transport and framing", operations)."""
from __future__ import annotations

import asyncio
import signal
import time
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from helpers.db import lock_bill, wait_until_blocked
from helpers.gateway import bank_toml

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BILL = NOP + "2026"
PAYABLE = date(2099, 8, 31)
AMOUNT = 150_000


async def wait_refused(port: int, timeout: float = 5.0) -> None:
    """Until a new TCP connection to `port` is refused."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        except ConnectionResetError:
            pass  # caught in the backlog of the listener while it closed: try again
        else:
            writer.close()
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        await asyncio.sleep(0.05)


def rewrite(gw, banks: str) -> None:
    """The gateway's configuration file with another bank list (the [state]/[iso8583] part kept)."""
    text = gw.config_path.read_text()
    head = text[: text.index("[[banks]]")] if "[[banks]]" in text else text
    gw.config_path.write_text(head + banks)


async def reload(gw, expect: str = "bank list reloaded", timeout: float = 5.0) -> None:
    """SIGHUP, then wait until the gateway logged `expect` once more than before."""
    before = gw.log().count(expect)
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while gw.log().count(expect) <= before:
        assert gw.proc.poll() is None, "gateway died on SIGHUP:\n" + gw.log()[-3000:]
        assert time.monotonic() < deadline, f"no {expect!r} after SIGHUP"
        await asyncio.sleep(0.05)


async def test_sigterm_answers_requests_in_flight_then_exits(gateway, db, db_url):
    bill_id = await add_pbb(db, due=PAYABLE)
    locker = await asyncpg.connect(db_url)
    try:
        async with gateway.client(timeout_s=15) as bank:
            tx = await lock_bill(locker, bill_id)
            request = bank.payment("pbb", BILL, AMOUNT)
            pending = asyncio.create_task(bank.request(request))
            await wait_until_blocked(db)
            gateway.proc.send_signal(signal.SIGTERM)
            await wait_refused(gateway.port)
            assert not pending.done() and gateway.proc.poll() is None
            await tx.rollback()
            answer = await asyncio.wait_for(pending, 10)
            assert (answer["t"], answer["39"], answer["11"]) == ("0210", "00", request["11"])
            assert len(answer["47"]) == 18
            # The connection is closed once the last answer is out.
            await asyncio.wait_for(bank.closed.wait(), 10)
    finally:
        await locker.close()
    assert await asyncio.to_thread(gateway.proc.wait, 15) == 0
    assert await db.fetchval("SELECT ntpd FROM payments WHERE bill_id = $1", bill_id) == answer["47"]
    assert await db.fetchval("SELECT status FROM bills WHERE id = $1", bill_id) == "paid"


async def test_sigterm_pending_answer_survives_bank_sending_more(gateway, db, db_url):
    """A bank keeps talking during the graceful shutdown (a new request, say): the answer to the payment
    already in flight must still reach it."""
    bill_id = await add_pbb(db, due=PAYABLE)
    locker = await asyncpg.connect(db_url)
    try:
        async with gateway.client(timeout_s=15) as bank:
            tx = await lock_bill(locker, bill_id)
            request = bank.payment("pbb", BILL, AMOUNT)
            pending = asyncio.create_task(bank.request(request))
            await wait_until_blocked(db)
            gateway.proc.send_signal(signal.SIGTERM)
            await wait_refused(gateway.port)
            late = asyncio.create_task(bank.request(bank.network("301")))
            await asyncio.sleep(0.3)
            assert not bank.closed.is_set(), "connection dropped while a payment was in flight"
            await tx.rollback()
            answer = await asyncio.wait_for(pending, 10)
            assert (answer["39"], answer["11"]) == ("00", request["11"])
            late.cancel()
    finally:
        await locker.close()
    assert await asyncio.to_thread(gateway.proc.wait, 15) == 0
    assert await db.fetchval("SELECT ntpd FROM payments WHERE bill_id = $1", bill_id) == answer["47"]


async def test_sighup_disable_and_enable_bank(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        inq = await bank.request(bank.inquiry("pbb", BILL))
        assert inq["39"] == "00"
        rewrite(gateway, bank_toml(enabled=False))
        await reload(gateway)
        refused = await bank.request(bank.inquiry("pbb", BILL))
        assert (refused["t"], refused["39"]) == ("0210", "05")
        pay = await bank.request(bank.payment("pbb", BILL, AMOUNT))
        assert pay["39"] == "05" and "47" not in pay
        assert not bank.closed.is_set()
        # A disabled bank's new connections are accepted and refused per request (RC 05).
        async with gateway.client(timeout_s=5) as newcomer:
            assert (await newcomer.request(newcomer.inquiry("pbb", BILL)))["39"] == "05"
        rewrite(gateway, bank_toml(enabled=True))
        await reload(gateway)
        again = await bank.request(bank.inquiry("pbb", BILL))
        assert again["39"] == "00"
    assert await db.fetchval("SELECT count(*) FROM payments") == 0


async def test_sighup_bank_removed_closes_its_connections(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        assert (await bank.request(bank.inquiry("pbb", BILL)))["39"] == "00"
        rewrite(gateway, bank_toml(code="120", allow="10.1.1.1/32"))
        await reload(gateway)
        await asyncio.wait_for(bank.closed.wait(), 5)
    # 127.0.0.1 now belongs to no bank: closed at once.
    async with gateway.client(timeout_s=2) as stranger:
        await asyncio.wait_for(stranger.closed.wait(), 5)
    assert gateway.proc.poll() is None


async def test_sighup_address_taken_from_its_bank_closes_its_connections(gateway, db):
    """The bank stays, but the operator took the connection's address out of its allow list (a peer no longer
    trusted): its open connection is closed too, as a security event, not left to transact."""
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        assert (await bank.request(bank.inquiry("pbb", BILL)))["39"] == "00"
        rewrite(gateway, bank_toml(allow="10.1.1.1/32"))
        await reload(gateway)
        await asyncio.wait_for(bank.closed.wait(), 5)
    deadline = time.monotonic() + 5
    while not (rows := await db.fetch("SELECT bank_code, peer, detail FROM message_log WHERE event = 'security'"
                                      " AND detail LIKE '%after reload%'")):
        assert time.monotonic() < deadline, "the closing was not logged as a security event"
        await asyncio.sleep(0.05)
    assert [(r["bank_code"], r["peer"].split(":")[0], r["detail"]) for r in rows] == [
        ("110", "127.0.0.1", "connection no longer allowed for bank 110 after reload; closed")]
    # Its payments never happened after the reload: nothing was posted on the way out.
    assert await db.fetchval("SELECT count(*) FROM payments") == 0
    assert gateway.proc.poll() is None


@pytest.mark.parametrize("broken", [
    "[[banks]\ncode = 110\n",                                      # does not parse
    '[[banks]]\ncode = "110"\nallow = ["127.0.0.1/32"]\nframing = "ebcdic"\n',  # bad value
    bank_toml() + bank_toml(code="120", allow="127.0.0.0/8"),      # overlapping allow lists
], ids=["toml", "value", "overlap"])
async def test_sighup_invalid_config_keeps_old_bank_list(gateway, db, broken):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        assert (await bank.request(bank.inquiry("pbb", BILL)))["39"] == "00"
        rewrite(gateway, broken)
        await reload(gateway, expect="reload refused")
        assert gateway.proc.poll() is None
        assert not bank.closed.is_set()
        assert (await bank.request(bank.inquiry("pbb", BILL)))["39"] == "00"
        pay = await bank.request(bank.payment("pbb", BILL, AMOUNT))
        assert pay["39"] == "00"
    async with gateway.client(timeout_s=5) as fresh:
        assert (await fresh.request(fresh.network("301")))["39"] == "00"
    assert "bank list reloaded" not in gateway.log()


async def test_sighup_bank_removed_with_payment_in_flight(gateway, db, db_url):
    """Its connection is closed at once; the payment in flight still completes and its (undeliverable)
    answer is still recorded in the message log."""
    bill_id = await add_pbb(db, due=PAYABLE)
    locker = await asyncpg.connect(db_url)
    try:
        async with gateway.client(timeout_s=10) as bank:
            tx = await lock_bill(locker, bill_id)
            request = bank.payment("pbb", BILL, AMOUNT)
            pending = asyncio.create_task(bank.request(request))
            await wait_until_blocked(db)
            rewrite(gateway, bank_toml(code="120", allow="10.1.1.1/32"))
            await reload(gateway)
            await asyncio.wait_for(bank.closed.wait(), 5)
            with pytest.raises(ConnectionError):
                await pending
            await tx.rollback()
    finally:
        await locker.close()
    deadline = time.monotonic() + 5
    while not (rows := await db.fetch(
            "SELECT mti, response_code, ntpd FROM message_log WHERE direction = 'out' AND stan = $1", request["11"])):
        assert time.monotonic() < deadline, "the answer of the closed connection was never logged"
        await asyncio.sleep(0.05)
    ntpd = await db.fetchval("SELECT ntpd FROM payments WHERE bill_id = $1", bill_id)
    assert [tuple(r) for r in rows] == [("0210", "00", ntpd)]
    assert "Task exception was never retrieved" not in gateway.log()
    assert gateway.proc.poll() is None
