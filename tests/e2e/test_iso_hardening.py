"""Hardening of the ISO 8583 listener against a real ``gateway serve`` (spec/iso8583.md "Transport and
framing", "MAC", and the message log's allow-list): the per-address connection limit, the first-frame
timeout, keep-alives as traffic, the MAC of the bank's echo answers, card data kept out of every log, and
a fuzz run of arbitrary and mutated frames after which the server still answers and still logs."""
from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billdata import add_pbb
from gateway.banksim.client import IsoClient
from gateway.iso8583 import framing, mac
from gateway.iso8583.spec import decode, encode, is_request, response_mti
from helpers.db import poll_rows
from helpers.fuzz import ACTIONS, damage
from helpers.gateway import ONE_WORKER, bank_toml

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BILL = NOP + "2026"
PAYABLE = date(2099, 8, 31)
MAC_KEY_HEX = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef"
MAC_KEY = bytes.fromhex(MAC_KEY_HEX)


async def wait_closed_by_server(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except (ConnectionResetError, BrokenPipeError):
        return b""


async def raw_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stan: str) -> dict[str, str]:
    """An 0800/301 on a raw connection and its answer."""
    fields = IsoClient("127.0.0.1", 0).network("301")
    fields["11"] = stan
    writer.write(framing.frame(encode(fields), "ascii4"))
    await writer.drain()
    raw = await asyncio.wait_for(framing.read_frame(reader, "ascii4"), 5)
    assert raw is not None, "closed instead of answered"
    return decode(raw)


async def wait_for_server_close_count(gw, before: int) -> None:
    deadline = time.monotonic() + 5
    while gw.log().count('"connection closed"') == before:
        assert time.monotonic() < deadline, "the server never saw the connection close"
        await asyncio.sleep(0.05)


async def wait_no_connections(gw) -> None:
    """Until every connection the gateway opened (the start-up probe's included) is closed again."""
    deadline = time.monotonic() + 10
    while (log := gw.log()).count('"connection opened"') != log.count('"connection closed"'):
        assert time.monotonic() < deadline, "connections stay open"
        await asyncio.sleep(0.05)


# -- connection limit per source address -------------------------------------------------------------


async def test_connections_per_address_are_limited(make_gateway, db):
    gw = make_gateway(banks='[[banks]]\ncode = "110"\nallow = ["127.0.0.0/8"]\n',
                      extra="max_connections_per_address = 2", env=ONE_WORKER)  # each worker's own limit
    await wait_no_connections(gw)
    # The test's own address, so that the fixture's start-up probe (from 127.0.0.1) never counts against it.
    here = ("127.0.0.3", 0)
    first = [await asyncio.open_connection("127.0.0.1", gw.port, local_addr=here) for _ in range(2)]
    try:
        for n, (reader, writer) in enumerate(first):
            assert (await raw_echo(reader, writer, f"10000{n}"))["39"] == "00"
        # A third from the same address: closed at once, without an answer, logged as a security event.
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port, local_addr=here)
        writer.write(framing.frame(encode(IsoClient("127.0.0.1", 0).network("301")), "ascii4"))
        assert await wait_closed_by_server(reader, 5) == b""
        writer.close()
        rows = await poll_rows(db, "SELECT event, detail, peer FROM message_log WHERE event = 'security'")
        assert [(r["event"], r["detail"]) for r in rows] == [("security", "connection limit per address reached; refused")]
        assert rows[0]["peer"].startswith("127.0.0.3:")
        # Another source address is not affected by the first one's limit.
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", gw.port, local_addr=("127.0.0.2", 0))
        try:
            assert (await raw_echo(other_reader, other_writer, "200000"))["39"] == "00"
        finally:
            closed_before = gw.log().count('"connection closed"')
            other_writer.close()
        # Its close is seen by the gateway before the next step counts closes.
        await wait_for_server_close_count(gw, closed_before)
        # The connections already open keep working; when one leaves, the address may connect again.
        assert (await raw_echo(*first[1], "100002"))["39"] == "00"
        closed_before = gw.log().count('"connection closed"')
        first[0][1].close()
        await wait_for_server_close_count(gw, closed_before)
        again = await asyncio.open_connection("127.0.0.1", gw.port, local_addr=here)
        first[0] = again
        assert (await raw_echo(*again, "100003"))["39"] == "00"
    finally:
        for _, writer in first:
            writer.close()
    assert await db.fetchval("SELECT count(*) FROM message_log WHERE event = 'security'") == 1
    assert gw.proc.poll() is None


# -- first-frame timeout -------------------------------------------------------------------------------


async def test_connection_without_a_complete_first_frame_is_closed(make_gateway, db):
    gw = make_gateway(extra="first_frame_timeout_s = 1")
    await asyncio.sleep(0.3)
    echo = encode(IsoClient("127.0.0.1", 0).network("301"))
    stalled = {
        "silent": b"",
        "half header": b"01",
        "header, part of the message": framing.frame(echo, "ascii4")[:20],
    }
    open_ones = {name: await asyncio.open_connection("127.0.0.1", gw.port) for name in stalled}
    keep_alive = await asyncio.open_connection("127.0.0.1", gw.port)
    answered = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        for name, data in stalled.items():
            open_ones[name][1].write(data)
            await open_ones[name][1].drain()
        keep_alive[1].write(b"0000")  # a whole frame of length zero
        assert (await raw_echo(*answered, "300001"))["39"] == "00"
        for name, (reader, _) in open_ones.items():
            assert await wait_closed_by_server(reader, 10) == b"", name
        rows = await poll_rows(db, "SELECT detail FROM message_log WHERE event = 'security'", count=3)
        assert [r["detail"] for r in rows] == ["no complete frame within 1 s of opening; closed"] * 3
        # Well past the timeout, the connections that did send a complete frame are still open.
        await asyncio.sleep(1.5)
        assert (await raw_echo(*keep_alive, "300002"))["39"] == "00"
        assert (await raw_echo(*answered, "300003"))["39"] == "00"
    finally:
        for _, writer in (*open_ones.values(), keep_alive, answered):
            writer.close()
    assert await db.fetchval("SELECT count(*) FROM message_log WHERE event = 'security'") == 3
    assert gw.proc.poll() is None


# -- keep-alives count as traffic ---------------------------------------------------------------------


async def test_keep_alives_keep_a_connection_that_ignores_echoes(make_gateway, db):
    gw = make_gateway(extra="idle_timeout_s = 4\necho_after_s = 1")
    async with gw.client(answer_echo=False, timeout_s=5) as bank:
        # A keep-alive every 2 s: the gateway's echo goes out after 1 s of silence and is never answered,
        # yet the connection outlives the 4 s idle timeout several times over.
        started = time.monotonic()
        while time.monotonic() - started < 10:
            bank.send_raw(b"0000")
            await bank.writer.drain()
            await asyncio.sleep(2)
            assert not bank.closed.is_set(), "closed although keep-alives were flowing"
        echoes = []
        while not bank.unsolicited.empty():
            echoes.append(bank.unsolicited.get_nowait())
        assert echoes and {(e["t"], e["70"]) for e in echoes} == {("0800", "301")}
        assert (await bank.request(bank.network("301")))["39"] == "00"
        # Keep-alives stop: the idle timeout applies again.
        await asyncio.wait_for(bank.closed.wait(), 15)
    assert gw.proc.poll() is None


# -- MAC of the bank's answer to the gateway's echo ---------------------------------------------------


async def test_mac_of_the_banks_echo_answer_is_checked(make_gateway, db):
    gw = make_gateway(banks=bank_toml("140", mac_key=MAC_KEY_HEX), extra="echo_after_s = 1\nidle_timeout_s = 60")
    async with gw.client("140", mac_key=MAC_KEY, answer_echo=False, timeout_s=5) as bank:
        stans = []
        for signer in ("wrong key", "no MAC", "right key"):
            echo = await asyncio.wait_for(bank.unsolicited.get(), 10)
            assert (echo["t"], echo["70"]) == ("0800", "301")
            assert mac.verify(echo["_raw"].encode("ascii"), MAC_KEY)
            answer = {"t": "0810", "7": echo["7"], "11": echo["11"], "32": echo["32"], "39": "00", "70": "301"}
            if signer == "wrong key":
                data = mac.sign(answer, b"not the bank's key, but 32 bytes")
            elif signer == "no MAC":
                data = encode(answer)
            else:
                data = mac.sign(answer, MAC_KEY)
            bank.send_raw(framing.frame(data, "ascii4"))
            await bank.writer.drain()
            stans.append(echo["11"])
        # Nothing else changes: the connection stays open and its requests are answered.
        ok = await bank.request(bank.network("301"))
        assert ok["39"] == "00" and mac.verify(ok["_raw"].encode("ascii"), MAC_KEY)
        assert not bank.closed.is_set()
    rows = await poll_rows(db, "SELECT stan, event, detail FROM message_log WHERE direction = 'in' AND mti = '0810'"
                               " ORDER BY id", count=3)
    assert [tuple(r) for r in rows] == [
        (stans[0], "security", "missing or wrong MAC"),
        (stans[1], "security", "missing or wrong MAC"),
        (stans[2], "message", None),
    ]
    assert gw.log().count("security: missing or wrong MAC on an answer") == 2
    assert gw.proc.poll() is None


# -- card data never logged ---------------------------------------------------------------------------

SECRET = "QZXSECRET7731"
PAN = "4111111111111111"
CARD_FIELDS = {
    "34": f"77{SECRET}0099",  # extended PAN
    "35": f"{PAN}D{SECRET}",  # track 2
    "36": f"0111{SECRET}=TRACK3=5512",  # track 3
    "45": f"B{PAN}^{SECRET}/CARDHOLDER^2512101000000000000",  # track 1: PAN and cardholder name
    "52": f"{SECRET}PIN",  # PIN block (16 characters)
    "55": f"9F26{SECRET}9F27",  # chip data
}


async def test_card_data_is_in_no_log(gateway, db):
    await add_pbb(db, due=PAYABLE)
    assert len(CARD_FIELDS["52"]) == 16
    async with gateway.client(timeout_s=5) as bank:
        # A valid inquiry carrying card data: answered normally.
        inquiry = bank.inquiry("pbb", BILL) | {"2": PAN} | CARD_FIELDS
        answer = await bank.request(inquiry)
        assert (answer["39"], answer["4"]) == ("00", "000000150000")
        assert "45" not in answer and "35" not in answer
        # A malformed one (format error path: whatever could be read is logged and echoed).
        broken = bank.inquiry("pbb", BILL) | CARD_FIELDS
        broken["4"] = "000000777777"
        raw = encode(broken).replace(b"000000777777", b"0000007777X7")
        bank.send_raw(framing.frame(raw, "ascii4"))
        refused = await asyncio.wait_for(bank.unsolicited.get(), 5)
        assert (refused["t"], refused["39"], refused["11"]) == ("0210", "30", broken["11"])
        # A truncated one (the codec gives up mid-message) and a stray answer the gateway did not ask for.
        truncated = bank.inquiry("pbb", BILL) | CARD_FIELDS
        bank.send_raw(framing.frame(encode(truncated)[:-5], "ascii4"))
        refused = await asyncio.wait_for(bank.unsolicited.get(), 5)
        assert (refused["t"], refused["39"], refused["11"]) == ("0210", "30", truncated["11"])
        stray = bank.inquiry("pbb", BILL) | CARD_FIELDS | {"t": "0210", "39": "00"}
        bank.send_raw(framing.frame(encode(stray), "ascii4"))
        assert (await bank.request(bank.network("301")))["39"] == "00"
    stans = [inquiry["11"], broken["11"], truncated["11"], stray["11"]]
    rows = await poll_rows(db, "SELECT stan, direction, event, fields FROM message_log WHERE stan = ANY($1::text[])"
                               " ORDER BY id", stans, count=7)
    assert [(r["stan"], r["direction"], r["event"]) for r in rows] == [
        (inquiry["11"], "in", "message"), (inquiry["11"], "out", "message"),
        (broken["11"], "in", "format_error"), (broken["11"], "out", "message"),
        (truncated["11"], "in", "format_error"), (truncated["11"], "out", "message"),
        (stray["11"], "in", "message"),
    ]
    card_lengths = {k: {"len": len(v)} for k, v in CARD_FIELDS.items()}
    logged_in = json.loads(rows[0]["fields"])
    assert {k: logged_in[k] for k in CARD_FIELDS} == card_lengths
    assert logged_in["2"] == "411111******1111"
    assert logged_in["61"] == BILL and logged_in["37"] == inquiry["37"]
    assert json.loads(rows[1]["fields"])["2"] == "411111******1111"  # echoed in the answer, masked there too
    assert {k: json.loads(rows[2]["fields"])[k] for k in CARD_FIELDS} == card_lengths
    assert {k: json.loads(rows[6]["fields"])[k] for k in CARD_FIELDS} == card_lengths
    # Not in any column of any row, nor in the process log (the same query does find what is logged).
    assert await db.fetchval("SELECT count(*) FROM message_log m WHERE m::text LIKE '%' || $1 || '%'", BILL) == 5
    assert await db.fetchval("SELECT count(*) FROM message_log m WHERE m::text LIKE '%' || $1 || '%'", SECRET) == 0
    assert await db.fetchval("SELECT count(*) FROM message_log m WHERE m::text LIKE '%' || $1 || '%'", PAN) == 0
    process_log = gateway.log()
    assert inquiry["11"] in process_log  # the log did record the exchange
    assert SECRET not in process_log and PAN not in process_log


# -- fuzz against a running gateway -------------------------------------------------------------------

PROBE_STAN = "999999"
PROBE_TIME = "1231235959"
FUZZ_BANK = IsoClient("127.0.0.1", 0)  # message builders only (outside the strategies: it seeds its STANs)
PROBE = framing.frame(encode({"t": "0800", "7": PROBE_TIME, "11": PROBE_STAN, "32": "110", "70": "301"}), "ascii4")


@st.composite
def mutated_0200(draw) -> bytes:
    """A valid 0200's body after bit flips, truncation, inserted or deleted bytes, or a changed digit
    (length prefixes, numeric fields and the MTI are digits)."""
    stan = draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    if draw(st.booleans()):
        request = FUZZ_BANK.inquiry("pbb", BILL, stan=stan)
    else:
        request = FUZZ_BANK.payment("pbb", BILL, 150_000, stan=stan)
    raw = bytearray(encode(request))
    for _ in range(draw(st.integers(1, 3))):
        damage(draw, raw, draw(st.sampled_from(ACTIONS)), draw(st.integers(0, max(0, len(raw) - 1))), 6)
    return bytes(raw)


@st.composite
def fuzz_frames(draw) -> tuple[bytes, bool | None]:
    """(bytes to send, whether the frame is well-framed: True, badly framed: False, or neither: None)."""
    body = draw(st.binary(max_size=300) | mutated_0200())
    header = draw(st.sampled_from(["right", "right", "right", "longer", "shorter", "not digits", "oversized"]))
    if header == "right":
        return framing.frame(body, "ascii4"), True
    if header == "not digits":
        return draw(st.sampled_from([b" 123", b"+123", b"12a4", b"\x00\x00\x00\x05", b"-001"])) + body, False
    if header == "oversized":
        return b"%04d" % draw(st.integers(8193, 9999)) + body, False
    delta = draw(st.integers(1, 40))
    size = len(body) + delta if header == "longer" else max(0, len(body) - delta)
    return b"%04d" % size + body, None


def exchange(port: int, data: bytes) -> list[bytes]:
    """Send `data` then the probe echo, half-close, and collect every frame until the server closes.

    Half-closing makes the outcome definite: the server sees EOF, answers whatever is still in flight and
    closes; a server that never closes fails the test by the socket timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        try:
            sock.sendall(data + PROBE)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server already (an untrusted header): nothing more can be said
        received = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    decoder = framing.FrameDecoder("ascii4")
    frames = decoder.feed(bytes(received))
    assert decoder._buffer == b"", f"a partial frame from the gateway: {bytes(received)!r}"
    return frames


async def test_fuzzed_frames_are_answered_or_dropped_and_the_server_stays_up(make_gateway, db):
    await add_pbb(db, due=PAYABLE)
    gw = make_gateway()
    outcomes = {"answered": 0, "dropped": 0, "closed": 0}

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(fuzz_frames())
    def check(case):
        data, well_framed = case
        answers = [decode(raw) for raw in exchange(gw.port, data)]  # everything the gateway sends decodes
        probe = [a for a in answers if (a["t"], a.get("11"), a.get("7")) == ("0810", PROBE_STAN, PROBE_TIME)]
        others = [a for a in answers if a not in probe]
        if well_framed:
            # A frame the stream can carry never closes the connection: the probe behind it is answered,
            # and the frame itself is answered exactly once if it is a request, else dropped.
            assert [(a["t"], a["39"]) for a in probe] == [("0810", "00")]
            body = data[4:]
            if len(body) >= 4 and is_request(body[:4].decode("latin-1")):
                assert [a["t"] for a in others] == [response_mti(body[:4].decode())]
            else:
                assert others == []
        elif well_framed is False:
            # An untrusted header: closed without a word.
            assert answers == []
        for answer in answers:
            assert answer["t"][2] in "13579" and len(answer["39"]) == 2
        outcomes["answered" if others else "closed" if not probe else "dropped"] += 1

    await asyncio.to_thread(check)
    assert sum(outcomes.values()) >= 200 and all(outcomes.values()), outcomes
    # The server is alive, answers a fresh connection's echo, and its message log still receives rows.
    assert gw.proc.poll() is None
    async with gw.client(timeout_s=5) as bank:
        echo = bank.network("301")
        assert (await bank.request(echo))["39"] == "00"
    rows = await poll_rows(db, "SELECT direction, mti, response_code FROM message_log WHERE stan = $1 AND"
                               " transmitted = $2 ORDER BY id", echo["11"], echo["7"], count=2)
    assert [tuple(r) for r in rows] == [("in", "0800", None), ("out", "0810", "00")]
    log = gw.log()
    assert "Traceback" not in log and "unexpected failure" not in log and "never retrieved" not in log


async def test_control_characters_in_iso_text_fields_are_rc_30_and_store_nothing(gateway, db):
    """NUL and other control characters are ASCII, so the codec lets them through; the service's text rules
    refuse them (RC 30), where the database would have refused them later (RC 96, "outcome unknown")."""
    await add_pbb(db, due=PAYABLE)
    async with gateway.client(timeout_s=5) as bank:
        answers = []
        # The bank simulator's encoder (like the gateway's) writes only printable ASCII: the control
        # characters go into the bytes after encoding, in place of same-length placeholders.
        for field, placeholder, value in (("48", b"NTB?X", b"NTB\x00X"), ("48", b"NTB?Y", b"NTB\x1bY"),
                                          ("41", b"ATM?????", b"ATM\x00\x00\x00\x01\x7f"),
                                          ("37", b"RRN?00000001", b"RRN\x0000000001")):
            payment = bank.payment("pbb", BILL, 150_000)
            payment[field] = placeholder.decode()
            raw = encode(payment)
            assert raw.count(placeholder) == 1
            bank.send_raw(framing.frame(raw.replace(placeholder, value), "ascii4"))
            answers.append(await asyncio.wait_for(bank.unsolicited.get(), 5))
        assert [(a["11"], a["39"]) for a in answers] == [(a["11"], "30") for a in answers]
        # The log still writes: a good payment afterwards is approved and its rows appear.
        good = bank.payment("pbb", BILL, 150_000)
        assert (await bank.request(good))["39"] == "00"
    assert await db.fetchval("SELECT count(*) FROM payments") == 1
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 1
    rows = await poll_rows(db, "SELECT direction FROM message_log WHERE stan = $1", good["11"], count=2)
    assert sorted(r["direction"] for r in rows) == ["in", "out"]
    # The refused requests are in the log, as refused by the codec (the field's characters are not "ans").
    refused = await poll_rows(db, "SELECT event, detail FROM message_log WHERE direction = 'in'"
                                  " AND stan = ANY($1::text[]) ORDER BY id", [a["11"] for a in answers], count=4)
    assert [r["event"] for r in refused] == ["format_error"] * 4, [tuple(r) for r in refused]
