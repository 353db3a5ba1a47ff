"""Fixtures of the end-to-end suite: a running ``gateway serve`` (``make_gateway`` is in tests/conftest.py) and
signed HTTP clients of its banks."""
from __future__ import annotations

import pytest

from helpers.gateway import Gateway, start
from helpers.http import CheckedHttpClient


@pytest.fixture
async def gateway(make_gateway):
    """The default gateway (bank 110, secret-110), its ISO 8583 and HTTP listeners accepting connections."""
    return await start(make_gateway)


@pytest.fixture
async def http_client(gateway):
    """Make signed HTTP clients for the default gateway: ``http_client(bank="110", secret="secret-110")``.

    Every answer is checked against the OpenAPI document and carries an ``X-Request-Id``, the caller's when it
    sent one (spec/http-api.md)."""
    clients: list[CheckedHttpClient] = []

    def make(bank: str = "110", secret: str = "secret-110", gw: Gateway | None = None) -> CheckedHttpClient:
        client = CheckedHttpClient((gw or gateway).http_url, bank, secret)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
