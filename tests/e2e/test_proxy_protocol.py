"""Behind a balancer (HAProxy `send-proxy-v2`), a bank's identity is still its own address: a gateway told to
trust 127.0.0.1 as a balancer (`proxy_protocol_from`) reads the PROXY protocol v2 header of each connection
from it, on ISO 8583 and HTTP alike, and applies the allow lists, the address-to-bank map and the message log
to the address the header names. A balancer connection without a valid header is closed; a header from
anybody else is no header at all (it would be a way to claim any address)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from billdata import add_pbb
from gateway import proxy_protocol
from gateway.banksim.client import IsoClient
from gateway.banksim.http_client import HttpBankClient
from helpers.db import poll_rows
from helpers.gateway import bank_toml, start

pytestmark = pytest.mark.integration

BANK_ADDRESS = ("203.0.113.7", 50211)  # the bank's real address, beyond the balancer
NOP = "327501000100100010"
TRUST_LOCALHOST = {"GATEWAY_ISO8583_PROXY_PROTOCOL_FROM": "127.0.0.1/32",
                   "GATEWAY_HTTP_PROXY_PROTOCOL_FROM": "127.0.0.1/32"}


async def gateway(make_gateway):
    return await start(make_gateway, banks=bank_toml("110", "secret-110", allow="203.0.113.0/24"),
                       env=TRUST_LOCALHOST)


async def closed_without_answer(client: IsoClient) -> bool:
    await client.connect()
    client.writer.write(b"0004ABCD")
    try:
        return await asyncio.wait_for(client.closed.wait(), 5) is True
    except asyncio.TimeoutError:
        return False
    finally:
        await client.close()


async def test_iso_8583_through_a_balancer_is_the_banks_own_address(make_gateway, db):
    gw = await gateway(make_gateway)
    await add_pbb(db, nop=NOP, year=2026, due=dt.date(2099, 8, 31), principal=125_000)

    async with gw.client(preamble=proxy_protocol.encode(BANK_ADDRESS, ("127.0.0.1", gw.port))) as iso:
        assert (await iso.request(iso.network("001")))["39"] == "00"
        answer = await iso.request(iso.inquiry("pbb", NOP + "2026"))
        assert (answer["39"], answer["4"]) == ("00", "000000125000")
    rows = await poll_rows(db, "SELECT DISTINCT peer FROM message_log WHERE mti = '0200'")
    assert [r["peer"] for r in rows] == ["203.0.113.7:50211"]

    # The balancer names an address of no bank: as if that address had connected directly.
    stranger = gw.client(preamble=proxy_protocol.encode(("198.51.100.1", 4000), ("127.0.0.1", gw.port)))
    assert await closed_without_answer(stranger)
    # A connection from the balancer without a header (or with garbage first) is closed.
    assert await closed_without_answer(gw.client())
    details = await poll_rows(db, "SELECT peer, detail FROM message_log WHERE event = 'security'"
                              " AND detail LIKE '%PROXY%' ORDER BY id")
    assert any("without a valid PROXY header" in r["detail"] for r in details)
    matched = await poll_rows(db, "SELECT peer FROM message_log WHERE event = 'security'"
                              " AND detail LIKE 'connection matches no bank%'")
    assert [r["peer"] for r in matched] == ["198.51.100.1:4000"]


async def raw_http(gw, preamble: bytes, request: bytes) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    try:
        writer.write(preamble + request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    if not raw:
        return 0, {}
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body) if body else {}


def signed_inquiry(path: str) -> bytes:
    client = HttpBankClient("http://unused", "110", "secret-110")
    asyncio.get_running_loop().create_task(client.close())
    headers = client.headers("GET", path, b"")
    lines = [f"GET {path} HTTP/1.1", "Host: gateway", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_http_through_a_balancer_is_the_banks_own_address(make_gateway, db):
    gw = await gateway(make_gateway)
    await add_pbb(db, nop=NOP, year=2026, due=dt.date(2099, 8, 31), principal=125_000)
    path = f"/v1/pbb/bills/{NOP}/2026"

    status, body = await raw_http(gw, proxy_protocol.encode(BANK_ADDRESS), signed_inquiry(path))
    assert (status, body["response_code"], body["amount"]["total"]) == (200, "00", 125_000)
    # Another address named by the balancer is not the bank's: 403, RC 05, as for a direct connection.
    status, body = await raw_http(gw, proxy_protocol.encode(("198.51.100.1", 4000)), signed_inquiry(path))
    assert (status, body["response_code"]) == (403, "05")
    # The balancer's own connection without a header: closed, nothing answered.
    status, _ = await raw_http(gw, b"", signed_inquiry(path))
    assert status == 0
    # The balancer's own connection (LOCAL: its health check) is served as the balancer's.
    status, _ = await raw_http(gw, proxy_protocol.encode(None),
                               b"GET /readyz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
    assert status == 200
    # Each request on its own connection, perhaps to another worker, each with its own log writer: the rows'
    # order in the table is not the requests' order.
    rows = await poll_rows(db, "SELECT peer, response_code FROM message_log WHERE channel = 'http'"
                           " AND direction = 'out' ORDER BY id", count=2)
    assert sorted((r["peer"], r["response_code"]) for r in rows) == [("198.51.100.1", "05"), ("203.0.113.7", "00")]
