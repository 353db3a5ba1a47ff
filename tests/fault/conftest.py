"""Fixtures of the fault suite: a fault proxy on the gateway's database path, and gateways behind it.

The databases and ``gateway serve`` processes come from the shared fixtures of tests/conftest.py
(``db_url``, ``make_gateway``); only the proxy is new here.
"""
from __future__ import annotations

import asyncio

import pytest

from .proxy import FaultProxy, upstream_of

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(db_url):
    """A fault proxy in front of this test's database (in pass mode)."""
    fault = FaultProxy(upstream_of(db_url)).start()
    yield fault
    fault.stop()


@pytest.fixture
async def proxied_gateway(make_gateway, proxy, db_url):
    """``gateway serve`` with the default database settings, its GATEWAY_DATABASE_URL pointing at the proxy
    (the serve migrates through it too); the test's ``db`` connection goes straight to the database."""
    gw = make_gateway(start=False)
    gw.db_url = proxy.url_for(db_url)
    await asyncio.to_thread(gw.start)
    return gw
