"""Every console page: usable with JavaScript off, the security headers, no serious accessibility violation
(axe-core), and a screenshot of each (written to docs/console/ when GATEWAY_CONSOLE_SCREENSHOTS is set)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

pytestmark = pytest.mark.integration

HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
HEADER = "business_date,bank_code,ntpd,ntb,rrn,stan,transmission_datetime,tax,bill_id,amount,status\n"


def assert_console_headers(headers: dict[str, str]) -> None:
    assert {name: headers.get(name) for name in HEADERS} == HEADERS


async def test_every_page_without_javascript_with_headers_axe_and_screenshots(site, signed_in, new_context, tmp_path):
    day = site.day.isoformat()
    async with site.past.client() as iso:  # an unmatched reversal for the work queue
        answer = await iso.request(iso.reversal(iso.payment("pbb", "3275010001001000302026", 100_000)))
        assert answer["39"] == "00"
    shots = SCREENSHOTS if os.environ.get("GATEWAY_CONSOLE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)

    # The sign-in page itself, JavaScript off.
    context = await new_context(java_script_enabled=False)
    anonymous = await context.new_page()
    response = await anonymous.goto(site.url("/console/masuk"))
    assert response.status == 200 and await anonymous.inner_text("h1") == "Masuk"
    assert_console_headers(response.headers)
    await anonymous.screenshot(path=str(shots / "01-masuk.png"), full_page=True)

    page = await signed_in("ani", java_script_enabled=False)
    # Forms work without JavaScript: a search, a note, a reconciliation upload.
    await page.goto(site.url("/console/transaksi"))
    await page.fill("#nop", "32.75.010.001.001-0001.0")
    await page.click("button:text('Cari')")
    assert await page.locator("#hasil tbody tr").count() == 1
    await page.locator("#hasil tbody tr td a").first.click()
    story_path = page.url.removeprefix(site.console.http_url)
    await page.fill("#isi-catatan", "Dicek tanpa JavaScript.")
    await page.click("button:text('Simpan catatan')")
    assert await page.locator("#linimasa li.note dd").all_text_contents() == ["Dicek tanpa JavaScript."]
    await page.goto(site.url(f"/console/setelmen?tanggal={day}"))
    await page.set_input_files("#berkas", files=[{"name": "bank110.csv", "mimeType": "text/csv", "buffer": (
        HEADER + f"{day},110,{site.ntpds[0]},NTB0,,,,PBB,3275010001001000102026,90000,paid\n").encode()}])
    await page.click("button:text('Unggah dan cocokkan')")
    assert await page.inner_text("h1") == f"Laporan rekonsiliasi {day} — bank 110"
    await page.screenshot(path=str(shots / "07-laporan-rekonsiliasi.png"), full_page=True)

    pages = [
        ("/console/", "Beranda", "02-beranda"),
        (f"/console/transaksi?cari=1&date={day}", "Cari transaksi", "03-cari-transaksi"),
        (story_path, re.compile(r"Riwayat transaksi #\d+"), "04-riwayat-transaksi"),
        (f"/console/antrian?tanggal={day}", "Antrian kerja", "05-antrian-kerja"),
        (f"/console/setelmen?tanggal={day}", f"Setelmen {day}", "06-setelmen"),
        (f"/console/setelmen/{day}/tutup", f"Tutup tanggal bisnis {day}", "06b-tutup-konfirmasi"),
        ("/console/audit", "Log audit", "08-audit"),
        ("/console/tidak-ada", "Halaman tidak ditemukan", "09-tidak-ditemukan"),
    ]
    for path, title, shot in pages:
        response = await page.goto(site.url(path))
        assert response.status == (404 if shot.startswith("09") else 200), path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert_console_headers(response.headers)
        heading = await page.inner_text("h1")
        assert (title.fullmatch(heading) if isinstance(title, re.Pattern) else heading == title), (path, heading)
        assert "<script" not in (await page.content()).lower()
        await page.screenshot(path=str(shots / f"{shot}.png"), full_page=True)
    queue_rows = await page.goto(site.url(f"/console/antrian?tanggal={day}"))
    assert queue_rows.ok
    assert await page.locator("#item-rekonsiliasi tbody tr form").count() == 1
    assert await page.locator("#tombstone tbody tr form").count() == 1

    # The style sheet, a redirect and an API-style failure under /console/ carry the headers too, as HTML.
    css = await page.request.get(site.url("/console/static/console.css"))
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    assert_console_headers(css.headers)
    bare = await page.request.get(site.url("/console"), max_redirects=0)
    assert bare.status == 308 and bare.headers["location"] == "/console/"
    bad = await page.request.get(site.url("/console/transaksi?ntpd=%00"))
    assert bad.status == 400 and bad.headers["content-type"].startswith("text/html")
    assert_console_headers(bad.headers)
    assert "Permintaan tidak valid" in await bad.text()
    wrong_method = await page.request.delete(site.url("/console/"))
    assert wrong_method.status == 405 and wrong_method.headers["content-type"].startswith("text/html")
    # The bank API keeps its problem details.
    api = await page.request.get(site.url("/v1/nothing"))
    assert api.status == 404 and api.headers["content-type"].startswith("application/problem+json")

    # Accessibility: axe-core on every page (a JavaScript-enabled context, for axe itself only).
    axe = Axe()
    js = await signed_in("ani")
    for path, _, _ in [("/console/masuk", None, None), *pages]:
        await js.goto(site.url(path))
        result = await axe.run(js)
        serious = [(v["id"], v["impact"], v["help"]) for v in result.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], (path, serious)
