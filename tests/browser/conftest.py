"""Fixtures of the browser tests: Debian's Chromium driven by Playwright over a real ``gateway serve``
(``make_gateway`` is in tests/conftest.py), staff accounts, and a past business date with traffic on it.

Gateway "past" runs with a ``[testing]`` clock two days back, so its bank traffic belongs to a past business
date D; gateway "console", on the real clock, serves the console, for which D's cut-off has passed (the way
tests/e2e/test_settlement_flow.py closes a date). Both share the test's database.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from billdata import add_pbb
from gateway.banksim.http_client import HttpBankClient
from helpers.gateway import Gateway, start
from helpers.staff import PASSWORD, add_user

CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
OFFSET_S = -2 * 86400
NOPS = [f"3275010001001{i:04d}0" for i in range(1, 4)]
AMOUNT = 100_000
USERS = {"budi": "support", "siti": "treasury", "ani": "admin"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


def past_day() -> dt.date:
    """The business date of the gateway whose clock is OFFSET_S behind (cut-off 23:00 Jakarta)."""
    local = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=OFFSET_S)).astimezone(ZoneInfo("Asia/Jakarta"))
    return local.date() + dt.timedelta(days=1) if local.hour >= 23 else local.date()


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def new_context(browser: Browser):
    """Make browser contexts (``new_context(java_script_enabled=False)``); all closed at the end."""
    made: list[BrowserContext] = []

    async def make(**kw) -> BrowserContext:
        context = await browser.new_context(**{"locale": "id-ID", "viewport": {"width": 1280, "height": 900}, **kw})
        made.append(context)
        return context

    yield make
    for context in made:
        await context.close()


@dataclass
class Site:
    """The console's gateway, the bank-traffic gateway, and what was done on business date ``day``."""

    console: Gateway
    past: Gateway
    day: dt.date
    ntpds: list[str]   # the HTTP payments of NOPS[0], NOPS[1] (the second one reversed)

    def url(self, path: str) -> str:
        return self.console.http_url + path


@pytest.fixture
async def site(make_gateway, db) -> Site:
    """Three bills, two payments over HTTP on D (the second reversed), staff users of every role."""
    past = await start(make_gateway, env={"GATEWAY_TESTING_ENABLED": "true",
                                          "GATEWAY_TESTING_CLOCK_OFFSET_SECONDS": str(OFFSET_S)})
    console = await start(make_gateway)
    for nop in NOPS:
        await add_pbb(db, nop=nop, year=2026, due=dt.date(2099, 8, 31), principal=AMOUNT)
    for user, role in USERS.items():
        add_user(console, user, role)
    day = past_day()
    ntpds = []
    async with HttpBankClient(past.http_url, "110", "secret-110") as bank:
        for i, nop in enumerate(NOPS[:2]):
            status, _, body = await bank.pbb_payment(f"k{i}", nop=nop, tax_year=2026, amount=AMOUNT, ntb=f"NTB{i}",
                                                     channel="teller")
            assert status == 200 and body["response_code"] == "00" and body["business_date"] == day.isoformat(), body
            ntpds.append(body["ntpd"])
        status, _, body = await bank.reversal("r1", ntpd=ntpds[1], amount=AMOUNT, reason="nasabah membatalkan")
        assert body["response_code"] == "00", body
    return Site(console=console, past=past, day=day, ntpds=ntpds)


async def sign_in(page: Page, site: Site, user: str, password: str = PASSWORD) -> None:
    """Through the sign-in form; lands on the home page (Beranda)."""
    await page.goto(site.url("/console/masuk"))
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("button:text('Masuk')")
    await page.wait_for_url(site.url("/console/"))


@pytest.fixture
def signed_in(new_context, site):
    """``await signed_in("budi", java_script_enabled=False)``: a page of a new context, signed in."""

    async def make(user: str, **kw) -> Page:
        context = await new_context(**kw)
        page = await context.new_page()
        await sign_in(page, site, user)
        return page

    return make


@pytest.fixture
def sign_in_page(site):
    """``await sign_in_page(page, "budi")``: sign an existing page in through the form."""

    async def run(page: Page, user: str, password: str = PASSWORD) -> None:
        await sign_in(page, site, user, password)

    return run
