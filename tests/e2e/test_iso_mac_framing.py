"""Length-header framings, keep-alives and MACs (spec/iso8583.md "Transport and framing", "MAC")."""
from __future__ import annotations

import asyncio
from datetime import date

import pytest

from billdata import add_pbb
from gateway.banksim.client import IsoClient
from gateway.iso8583 import framing, mac
from gateway.iso8583.spec import decode, encode
from helpers.db import counts
from helpers.gateway import bank_toml, free_port

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
PRINCIPAL = 150_000
FAR_DUE = date(2099, 8, 31)
MAC_KEY_HEX = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef"
MAC_KEY = bytes.fromhex(MAC_KEY_HEX)


async def read_frame_raw(reader: asyncio.StreamReader, header_bytes: int) -> tuple[bytes, bytes]:
    """(header, message) of the next frame, read byte-exactly without the project's framing code."""
    header = await asyncio.wait_for(reader.readexactly(header_bytes), 10)
    length = int(header) if header_bytes == 4 else int.from_bytes(header, "big")
    return header, await asyncio.wait_for(reader.readexactly(length), 10)


COUNTED = ("payments", "reversals", "message_keys", "quotes")


# -- framing ---------------------------------------------------------------------------------------


async def test_ascii4_and_binary2_framings_with_keep_alives(make_gateway, db):
    port = free_port()
    gw = make_gateway(banks=bank_toml("110") + bank_toml("130", port=port, framing="binary2"), **{"130": port})
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=2025, due=FAR_DUE)
    for code, name, keep_alive, header_bytes, year in (("110", "ascii4", b"0000", 4, 2026),
                                                        ("130", "binary2", b"\x00\x00", 2, 2025)):
        bank = gw.client(code, framing_name=name)
        inquiry = bank.inquiry("pbb", f"{NOP}{year}")
        payment = bank.payment("pbb", f"{NOP}{year}", PRINCIPAL)
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.bank_ports.get(code, gw.port))
        try:
            for request in (inquiry, payment):
                body = encode(request)
                header = b"%04d" % len(body) if name == "ascii4" else len(body).to_bytes(2, "big")
                # Keep-alives before, between header-aligned frames, and several in a row: all ignored.
                writer.write(keep_alive + keep_alive + header + body + keep_alive)
                await writer.drain()
                got_header, message = await read_frame_raw(reader, header_bytes)
                assert len(got_header) == header_bytes
                if name == "ascii4":
                    assert got_header.isdigit()
                answer = decode(message)
                assert answer["t"] == "0210" and answer["39"] == "00", (name, answer)
                assert answer["11"] == request["11"]
            assert len(answer["47"]) == 18
        finally:
            writer.close()
        # And the project's own client on the same framing.
        async with bank:
            assert (await bank.request(bank.inquiry("pbb", f"{NOP}{year}")))["39"] == "88"
    payments = await db.fetch("SELECT bank_code, stan FROM payments ORDER BY bank_code")
    assert [r["bank_code"] for r in payments] == ["110", "130"]
    # Ignored means ignored: no keep-alive left a format error (or any other non-message event) in the log.
    rows = []
    for _ in range(100):
        rows = await db.fetch("SELECT event, direction FROM message_log WHERE bank_code IN ('110', '130')")
        if len(rows) >= 12:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 12  # 3 requests and 3 answers per bank
    assert {r["event"] for r in rows} == {"message"}


async def test_bad_length_header_closes_only_that_connection(make_gateway, db):
    gw = make_gateway()
    async with gw.client() as good:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"00A7" + b"x" * 10)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without an answer
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"9999")  # above 8192
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        assert (await good.request(good.network("301")))["39"] == "00"


# -- MAC -------------------------------------------------------------------------------------------


@pytest.fixture
def mac_gateway(make_gateway):
    return make_gateway(banks=bank_toml("140", mac_key=MAC_KEY_HEX))


def assert_signed(answer: dict[str, str], field: str) -> None:
    other = "128" if field == "64" else "64"
    assert field in answer and other not in answer, answer
    raw = answer["_raw"].encode("ascii")
    assert raw.endswith(answer[field].encode())
    assert mac.verify(raw, MAC_KEY)
    assert not mac.verify(raw, b"another key of the bank, wrong!!")


async def test_mac_accepted_and_answers_signed(mac_gateway, db):
    await add_pbb(db, due=FAR_DUE)
    async with mac_gateway.client("140", mac_key=MAC_KEY) as bank:
        inquiry = bank.inquiry("pbb", NOP + "2026")
        ans = await bank.request(inquiry)
        assert ans["39"] == "00"
        assert_signed(ans, "64")
        payment = bank.payment("pbb", NOP + "2026", PRINCIPAL)
        assert mac.mac_field(payment) == "64"
        ans = await bank.request(payment)
        assert ans["39"] == "00" and len(ans["47"]) == 18
        assert_signed(ans, "64")
        reversal = bank.reversal(payment)
        assert mac.mac_field(reversal) == "128"  # field 90 needs the secondary bitmap
        assert decode(bank.encode(reversal))["128"]
        ans = await bank.request(reversal)
        assert ans["t"] == "0410" and ans["39"] == "00"
        assert_signed(ans, "128")
        ans = await bank.request(bank.network("301"))
        assert ans["t"] == "0810" and ans["39"] == "00"
        assert_signed(ans, "128")
    assert await counts(db, COUNTED) == {"payments": 1, "reversals": 1, "message_keys": 3, "quotes": 1}
    assert await db.fetchval("SELECT status FROM bills") == "unpaid"


async def test_wrong_or_missing_mac_refused_without_effect(mac_gateway, db):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=2025, due=FAR_DUE)
    async with mac_gateway.client("140", mac_key=MAC_KEY) as bank:
        # A good payment first, so that a reversal has something to undo.
        good = bank.payment("pbb", NOP + "2026", PRINCIPAL)
        assert (await bank.request(good))["39"] == "00"
        before = await counts(db, COUNTED)
        ntb = "NTB-WRONG-MAC"

        unsigned = IsoClient("127.0.0.1", mac_gateway.port, bank="140")  # no key: no MAC at all
        async with unsigned:
            for request in (unsigned.inquiry("pbb", NOP + "2026"), unsigned.reversal(good)):
                ans = await unsigned.request(request)
                assert ans["39"] == "05", ans
                assert_signed(ans, "64" if mac.mac_field(request) == "64" else "128")

        wrong_key = IsoClient("127.0.0.1", mac_gateway.port, bank="140", mac_key=b"k" * 32)
        async with wrong_key:
            ans = await wrong_key.request(wrong_key.reversal(good))
            assert ans["39"] == "05"

        # A correct MAC on other bytes: the amount changed after signing.
        tampered = bank.payment("pbb", NOP + "2025", PRINCIPAL, ntb=ntb)
        raw = bank.encode(tampered).replace(tampered["4"].encode(), f"{PRINCIPAL + 1:012d}".encode(), 1)
        future = asyncio.get_running_loop().create_future()
        bank._waiting[(tampered["11"], tampered["7"])] = future
        bank.send_raw(framing.frame(raw, "ascii4"))
        ans = await asyncio.wait_for(future, 10)
        assert ans["39"] == "05"
        assert_signed(ans, "64")
        assert await counts(db, COUNTED) == before
        statuses = await db.fetch("SELECT tax_year, status FROM bills ORDER BY tax_year")
        assert [tuple(r) for r in statuses] == [(2025, "unpaid"), (2026, "paid")]
        assert await db.fetchval("SELECT count(*) FROM payments WHERE ntb = $1", ntb) == 0

    rows = []
    for _ in range(100):
        rows = await db.fetch("SELECT direction, bank_code, response_code, detail FROM message_log"
                              " WHERE event = 'security' ORDER BY id")
        if len(rows) >= 4:
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 4
    assert {(r["direction"], r["bank_code"], r["response_code"]) for r in rows} == {("out", "140", "05")}
