"""Hostile and broken peers against a real ``gateway serve`` over raw TCP (spec/iso8583.md "Transport and
framing"): bad headers, undecodable bodies, truncated and oversized frames, slow senders, the connection
limit, unknown source addresses, idle timeout and echo. The server must stay up and other connections
must keep working."""
from __future__ import annotations

import asyncio
import time
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from gateway.banksim.client import IsoClient
from gateway.iso8583 import framing
from gateway.iso8583.spec import encode
from helpers.db import poll_rows
from helpers.gateway import ONE_WORKER

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BILL = NOP + "2026"
PAYABLE = date(2099, 8, 31)  # no penalty: the total due is the principal


async def wait_for_event(db, event: str, count: int = 1, timeout: float = 10.0) -> list:
    """Message-log rows of `event` (the log is flushed every 50 ms), waiting for at least `count`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetch("SELECT * FROM message_log WHERE event = $1 ORDER BY id", event)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def assert_works(client: IsoClient) -> None:
    """An echo and an inquiry on `client` are answered 00."""
    echo = await asyncio.wait_for(client.request(client.network("301")), 5)
    assert (echo["t"], echo["39"]) == ("0810", "00")
    inq = await asyncio.wait_for(client.request(client.inquiry("pbb", BILL)), 5)
    assert (inq["t"], inq["39"], inq["4"]) == ("0210", "00", "000000150000")


async def assert_closed(client: IsoClient, timeout: float = 5.0) -> None:
    await asyncio.wait_for(client.closed.wait(), timeout)


async def assert_closed_at_once(port: int) -> None:
    """A new connection is accepted by TCP and closed by the gateway without an answer to an echo."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    probe = IsoClient("127.0.0.1", port)
    try:
        writer.write(framing.frame(encode(probe.network("301")), "ascii4"))
        try:
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 3)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        assert data == b"", f"answered instead of closed: {data!r}"
    finally:
        writer.close()


async def test_garbage_body_is_dropped_and_connection_stays_open(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client() as other, gateway.client(timeout_s=5) as bad:
        await assert_works(other)
        # Keep-alive (zero length) is ignored; a body that is not even an MTI is logged and dropped.
        bad.send_raw(b"0000")
        bad.send_raw(framing.frame(b"\x00\xffhello", "ascii4"))
        await bad.writer.drain()
        rows = await wait_for_event(db, "format_error")
        assert len(rows) == 1 and rows[0]["direction"] == "in" and rows[0]["mti"] is None
        # No answer was sent for it, and the same connection is still usable.
        await assert_works(bad)
        assert bad.unsolicited.empty()
        assert not bad.closed.is_set()
        await assert_works(other)


async def test_undecodable_request_is_answered_rc30_echoing_readable_fields(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client() as other, gateway.client(timeout_s=5) as bad:
        await assert_works(other)
        fields = bad.inquiry("pbb", BILL)
        fields["4"] = "000000777777"
        raw = encode(fields)
        assert raw.count(b"000000777777") == 1
        bad.send_raw(framing.frame(raw.replace(b"000000777777", b"0000007777X7"), "ascii4"))
        answer = await asyncio.wait_for(bad.unsolicited.get(), 5)
        assert answer["t"] == "0210"
        assert answer["39"] == "30"
        assert (answer["11"], answer["7"], answer["61"]) == (fields["11"], fields["7"], BILL)
        assert "62" not in answer and "47" not in answer
        rows = await wait_for_event(db, "format_error")
        assert [(r["direction"], r["mti"], r["stan"]) for r in rows] == [("in", "0200", fields["11"])]
        await assert_works(bad)
        await assert_works(other)


async def test_unknown_request_mti_rc12_and_stray_answer_dropped(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        # A request MTI the dialect does not use: its answer MTI with RC 12.
        odd = bank.inquiry("pbb", BILL)
        odd["t"] = "0100"
        answer = await bank.request(odd)
        assert (answer["t"], answer["39"], answer["11"]) == ("0110", "12", odd["11"])
        # An answer (odd third digit) the gateway never asked for: logged, not answered.
        stray = bank.inquiry("pbb", BILL)
        stray["t"] = "0210"
        stray["39"] = "00"
        bank.send_raw(framing.frame(encode(stray), "ascii4"))
        await assert_works(bank)
        assert bank.unsolicited.empty()
    rows = await poll_rows(db, "SELECT direction, mti FROM message_log WHERE stan = $1 ORDER BY id", stray["11"])
    assert [tuple(r) for r in rows] == [("in", "0210")]


@pytest.mark.parametrize("header", [b"ab12", b" 187", b"+187", b"8193", b"9999"],
                         ids=["letters", "space", "plus", "just-over-8192", "oversized"])
async def test_untrusted_header_closes_only_that_connection(gateway, db, header):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client() as other, gateway.client(timeout_s=5) as bad:
        await assert_works(other)
        await assert_works(bad)
        bad.send_raw(header + b"0200" + b"x" * 60)
        await assert_closed(bad)
        rows = await wait_for_event(db, "framing_error")
        assert len(rows) == 1 and rows[0]["bank_code"] == "110"
        await assert_works(other)
    assert gateway.proc.poll() is None
    async with gateway.client() as fresh:
        await assert_works(fresh)


async def test_truncated_frame_then_close_leaves_server_fine(gateway, db):
    await add_pbb(db, due=PAYABLE)
    async with gateway.client() as other:
        await assert_works(other)
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"0200" + b"0" * 50)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await writer.wait_closed()
        # Nothing was answered for it (the server only saw EOF inside a frame).
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await asyncio.sleep(0.2)
        await assert_works(other)
    assert gateway.proc.poll() is None
    async with gateway.client() as fresh:
        await assert_works(fresh)
    rows = await db.fetch("SELECT event FROM message_log WHERE direction = 'in' AND event <> 'message'")
    assert rows == []


async def test_slow_sender_does_not_hold_up_other_connections(gateway, db):
    """One connection trickles a valid frame a byte at a time (20 bytes/s, i.e. a frame takes seconds);
    meanwhile another connection's 20 inquiries are all answered promptly. The slow frame is kept
    incomplete until the fast batch is done, whatever the machine's speed, then finished slowly."""
    await add_pbb(db, due=PAYABLE)
    for i in range(1, 21):
        await add_pbb(db, nop=f"3275010001002{i:04d}0", due=PAYABLE)
    async with gateway.client() as fast, gateway.client(timeout_s=15) as slow:
        request = slow.inquiry("pbb", BILL)
        future = asyncio.get_running_loop().create_future()
        slow._waiting[(request["11"], request["7"])] = future
        data = framing.frame(slow.encode(request), "ascii4")
        sent = 0
        fast_done = asyncio.Event()

        async def trickle(until: int, per_second: float) -> None:
            nonlocal sent
            while sent < until:
                slow.send_raw(data[sent:sent + 1])
                await slow.writer.drain()
                sent += 1
                await asyncio.sleep(1 / per_second)

        async def slow_part() -> None:
            await trickle(10, 20)  # the header and the MTI, slowly
            while not fast_done.is_set():  # then a byte every 50 ms, never the last one
                await trickle(min(sent + 1, len(data) - 1), 20)
                if sent == len(data) - 1:
                    await fast_done.wait()

        sender = asyncio.create_task(slow_part())
        await asyncio.sleep(0.3)  # the slow sender is now mid-frame
        assert 0 < sent < len(data)
        t0 = time.monotonic()
        answers = await asyncio.gather(*(
            fast.request(fast.inquiry("pbb", f"3275010001002{i:04d}02026")) for i in range(1, 21)))
        elapsed = time.monotonic() - t0
        incomplete_at = sent
        fast_done.set()
        assert [a["39"] for a in answers] == ["00"] * 20
        assert incomplete_at < len(data), "the slow frame was complete before the fast batch ended"
        assert elapsed < 3, f"20 inquiries took {elapsed:.2f} s next to a slow sender"
        assert not future.done()
        await sender
        await trickle(len(data), 50)  # the rest, still a byte at a time
        answer = await asyncio.wait_for(future, 5)
        assert (answer["t"], answer["39"], answer["4"]) == ("0210", "00", "000000150000")


async def test_connection_limit(make_gateway, db):
    await add_pbb(db, due=PAYABLE)
    gw = make_gateway(extra="max_connections = 3", env=ONE_WORKER)  # each worker's own limit
    await asyncio.sleep(0.3)  # the start-up probe connection is gone
    clients = [await gw.client(timeout_s=5).connect() for _ in range(3)]
    try:
        for client in clients:
            await assert_works(client)
        await assert_closed_at_once(gw.port)
        rows = await wait_for_event(db, "security")
        assert [r["detail"] for r in rows] == ["connection limit reached; refused"]
        # One leaves: a new connection is accepted again (once the server has seen the close).
        closed_before = gw.log().count('"connection closed"')
        await clients.pop(0).close()
        deadline = time.monotonic() + 5
        while gw.log().count('"connection closed"') == closed_before:
            assert time.monotonic() < deadline, "the server never saw the connection close"
            await asyncio.sleep(0.05)
        fifth = await gw.client(timeout_s=5).connect()
        clients.append(fifth)
        await assert_works(fifth)
        for client in clients:
            await assert_works(client)
        await assert_closed_at_once(gw.port)
        rows = await wait_for_event(db, "security", count=2)
        assert [r["detail"] for r in rows] == ["connection limit reached; refused"] * 2
    finally:
        for client in clients:
            await client.close()


async def test_source_address_matching_no_bank_is_closed(make_gateway, db):
    await add_pbb(db, due=PAYABLE)
    gw = make_gateway(banks='[[banks]]\ncode = "110"\nallow = ["10.9.9.9/32"]\n')
    await assert_closed_at_once(gw.port)
    rows = await wait_for_event(db, "security")
    assert rows and {r["detail"] for r in rows} == {"connection matches no bank; closed"}
    assert await db.fetchval("SELECT count(*) FROM message_log WHERE event = 'message'") == 0
    assert gw.proc.poll() is None


async def test_idle_connection_gets_echo_then_is_closed(make_gateway, db):
    gw = make_gateway(extra="idle_timeout_s = 3\necho_after_s = 1")
    async with gw.client(answer_echo=False) as silent:
        t0 = time.monotonic()
        echo = await asyncio.wait_for(silent.unsolicited.get(), 5)
        assert (echo["t"], echo["70"], echo["32"]) == ("0800", "301", "110")
        assert len(echo["11"]) == 6 and len(echo["7"]) == 10
        assert not silent.closed.is_set()
        await assert_closed(silent, 10)
        assert time.monotonic() - t0 >= 2.0, "closed well before the idle timeout"
    assert gw.proc.poll() is None
    rows = await wait_for_event(db, "echo")
    assert rows and rows[0]["direction"] == "out" and rows[0]["mti"] == "0800"


async def test_bank_disconnects_with_payment_in_flight(gateway, db, db_url):
    """The payment still commits (the bank will reverse or repeat it); the undeliverable answer is still
    recorded in the message log, and the server carries on."""
    bill_id = await add_pbb(db, due=PAYABLE)
    locker = await asyncpg.connect(db_url)
    try:
        async with gateway.client() as other:
            await assert_works(other)
            leaver = await gateway.client(timeout_s=10).connect()
            tx = locker.transaction()
            await tx.start()
            await locker.execute("SELECT id FROM bills WHERE id = $1 FOR UPDATE", bill_id)
            request = leaver.payment("pbb", BILL, 150_000)
            pending = asyncio.create_task(leaver.request(request))
            deadline = time.monotonic() + 5
            while not await db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'gateway' AND wait_event_type = 'Lock'"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await leaver.close()
            with pytest.raises((ConnectionError, asyncio.CancelledError)):
                await pending
            await asyncio.sleep(0.3)
            await tx.rollback()
            deadline = time.monotonic() + 5
            while not (rows := await db.fetch(
                    "SELECT mti, response_code, ntpd FROM message_log WHERE direction = 'out' AND stan = $1",
                    request["11"])):
                assert time.monotonic() < deadline, "the answer to the lost connection was never logged"
                await asyncio.sleep(0.05)
            ntpd = await db.fetchval("SELECT ntpd FROM payments WHERE bill_id = $1", bill_id)
            assert [tuple(r) for r in rows] == [("0210", "00", ntpd)]
            echo = await other.request(other.network("301"))
            assert echo["39"] == "00"
            again = await other.request(other.inquiry("pbb", BILL))
            assert (again["39"], again["4"]) == ("88", "000000000000")
    finally:
        await locker.close()
    assert "Task exception was never retrieved" not in gateway.log()
    assert gateway.proc.poll() is None
