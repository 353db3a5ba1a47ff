"""The Beranda of a running gateway in Chromium: a bank connected over ISO 8583 shows up as a connection row
(published by the instance every [iso8583] snapshot_interval_s), its payment in today's totals per bank and
channel, RC 91 and 96 of the last hour marked in text as well as colour, another instance's stale snapshot
marked USANG; usable with JavaScript off (refreshed by its link), no serious axe-core finding; the snapshot
goes when the connection closes and the instance's rows when it stops."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from billdata import add_pbb
from helpers.gateway import start
from helpers.staff import PASSWORD, add_user

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
NOP = "327501000100100070"
AMOUNT = 125_000
STALE = "gw-b.example:4242@20261123T010000.000000Z"


def business_day() -> dt.date:
    """Today's business date on the real clock (cut-off 23:00 Jakarta)."""
    local = dt.datetime.now(ZoneInfo("Asia/Jakarta"))
    return local.date() + dt.timedelta(days=1) if local.hour >= 23 else local.date()


async def sign_in(page: Page, base: str, user: str) -> None:
    await page.goto(base + "/console/masuk")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORD)
    await page.click("button:text('Masuk')")
    await page.wait_for_url(base + "/console/")


async def refresh_until(page: Page, selector: str, count: int, tries: int = 40) -> None:
    """Follow the page's own refresh link until ``selector`` matches ``count`` elements."""
    for _ in range(tries):
        if await page.locator(selector).count() == count:
            return
        await page.wait_for_timeout(250)
        await page.click("#muat-ulang")
    raise AssertionError(f"{selector}: not {count} after {tries} refreshes")


async def cells(page: Page, selector: str) -> list[str]:
    return [c.strip() for c in await page.locator(selector).locator("td, th").all_text_contents()]


async def test_the_dashboard_shows_connections_totals_and_alerting_codes(make_gateway, db, new_context, tmp_path):
    gw = await start(make_gateway, extra="snapshot_interval_s = 1")
    base = gw.http_url
    await add_pbb(db, nop=NOP, year=2026, due=dt.date(2099, 8, 31), principal=AMOUNT)
    add_user(gw, "budi", "support")
    # The last hour's answers that point at the gateway, as the message log keeps them.
    for rc, channel in (("91", "iso"), ("91", "iso"), ("96", "http")):
        await db.execute("INSERT INTO message_log (logged_at, channel, direction, bank_code, response_code)"
                         " VALUES (now() - interval '5 minutes', $1, 'out', '110', $2)", channel, rc)
    # Another instance that stopped renewing its snapshot a minute ago (three 5 s intervals have passed).
    await db.execute("INSERT INTO gateway_instances (instance, started_at, snapshot_interval_s, updated_at)"
                     " VALUES ($1, now() - interval '1 hour', 5, now() - interval '1 minute')", STALE)
    await db.execute("INSERT INTO iso_connections (instance, connection_id, bank_code, peer, connected_at, signed_on,"
                     " last_message_at, in_flight, updated_at) VALUES ($1, 'iso-3', '110', '10.20.0.7:50211',"
                     " now() - interval '50 minutes', true, now() - interval '2 minutes', 0,"
                     " now() - interval '1 minute')", STALE)
    shots = SCREENSHOTS if os.environ.get("GATEWAY_CONSOLE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    async with gw.client() as iso:
        assert (await iso.request(iso.network("001")))["39"] == "00"  # sign-on
        answer = await iso.request(iso.payment("pbb", NOP + "2026", AMOUNT))  # field 18 6011: ATM
        assert answer["39"] == "00", answer
        local_port = iso.writer.get_extra_info("sockname")[1]

        page = await (await new_context(java_script_enabled=False)).new_page()
        await sign_in(page, base, "budi")
        assert await page.inner_text("h1") == "Beranda"
        assert "<script" not in (await page.content()).lower()
        live = "#koneksi tbody tr[data-bank='110']:not(.stale)"
        # The harness's own readiness probes are connections too; a worker reports them until its next
        # snapshot, so wait for this client's row to be the only live one.
        await refresh_until(page, f"{live}:has-text('127.0.0.1:{local_port}')", 1)
        await refresh_until(page, live, 1)
        # The payment's task counts as in flight until its message-log row is written, after the answer
        # went out; a snapshot taken in between reports 1 until the next one.
        await refresh_until(page, f"{live}:has(td.num:text-is('0'))", 1)
        assert await page.inner_text("#tanggal-bisnis") == business_day().isoformat()
        assert await page.inner_text("#status-tanggal") == "Terbuka"

        row = await cells(page, live)
        assert row[0] == "110 BANK PEMBANGUNAN DAERAH"
        assert row[2] == f"127.0.0.1:{local_port}"
        assert row[3].endswith(" WIB") and row[5].endswith(" WIB")
        assert (row[4], row[6], row[7]) == ("Ya", "0", "Terkini")
        stale = await cells(page, "#koneksi tbody tr.stale")
        assert (stale[1], stale[2]) == (STALE, "10.20.0.7:50211") and stale[7].startswith("USANG — terakhir ")
        # This gateway's own report(s): one per process ([server] workers may run several), all current.
        assert await page.locator("#instans tbody tr:not(.stale)").count() >= 1
        assert (await cells(page, "#instans tbody tr.stale"))[:1] == [STALE]
        assert (await cells(page, "#instans tbody tr.stale"))[4] == "USANG"

        assert await cells(page, "#total-hari-ini tbody tr[data-bank='110'][data-kanal='atm']") == [
            "110 BANK PEMBANGUNAN DAERAH", "atm", "1", "Rp 125.000", "0", "Rp 0", "1", "Rp 125.000"]
        assert await page.inner_text("#transaksi-bersih") == "1"
        assert await page.inner_text("#jumlah-bersih") == "Rp 125.000"

        for rc, iso_count, http_count in (("91", "2", "0"), ("96", "0", "1")):
            line = page.locator(f"#jawaban-rc tbody tr[data-rc='{rc}']")
            assert await line.get_attribute("class") == "rc-alert"
            assert await cells(page, f"#jawaban-rc tbody tr[data-rc='{rc}']") == [
                rc, "Host tidak tersedia" if rc == "91" else "Kesalahan sistem", iso_count, http_count,
                str(int(iso_count) + int(http_count)), "PERHATIAN gangguan gateway"]
        approved = page.locator("#jawaban-rc tbody tr[data-rc='00']")
        assert await approved.get_attribute("class") is None
        assert int((await cells(page, "#jawaban-rc tbody tr[data-rc='00']"))[2]) >= 1  # the payment (and sign-on)
        assert "RC 91 dan 96" in await page.inner_text("#ringkas-rc")
        assert (await page.locator("#ringkas-rc strong").inner_text()) == "3"
        assert await page.locator("#item-terbuka a").inner_text() == "0"
        await page.screenshot(path=str(shots / "02-beranda.png"), full_page=True)

        # Accessibility: axe-core (a JavaScript-enabled context, for axe itself only).
        js = await (await new_context()).new_page()
        await sign_in(js, base, "budi")
        result = await Axe().run(js)
        serious = [(v["id"], v["impact"], v["help"]) for v in result.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == []

    # The connection closed: the next snapshot no longer has it.
    await refresh_until(page, live, 0)
    assert await page.locator("#koneksi tbody tr.stale").count() == 1
    # The read was audited each time, as the dashboard's own action.
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'budi' AND action = 'dashboard.view'"
                             " AND target = $1", business_day().isoformat()) >= 3
    # A stopping instance withdraws its snapshot; the other instance's stale one stays until it is purged.
    assert gw.stop() == 0
    assert [r["instance"] for r in await db.fetch("SELECT instance FROM gateway_instances")] == [STALE]
