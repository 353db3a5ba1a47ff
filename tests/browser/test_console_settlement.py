"""Settlement in the console: treasury closes a past business date through the confirmation form and downloads
the statement; roles and CSRF are enforced on the server (spec/operations.md "Settlement", http-api.md
"Staff routes")."""
from __future__ import annotations

import pytest

from helpers.staff import staff_cli

pytestmark = pytest.mark.integration


async def _cells(page, selector: str) -> list[str]:
    return [c.strip() for c in await page.locator(selector).all_text_contents()]


async def test_treasury_closes_a_past_date_and_downloads_the_statement(site, signed_in):
    day = site.day.isoformat()
    page = await signed_in("siti")
    await page.click("nav >> text=Setelmen")
    await page.fill("#tanggal", day)
    await page.click("button:text('Tampilkan')")
    assert await page.inner_text("h1") == f"Setelmen {day}"
    assert await page.inner_text("#status-tanggal") == "Terbuka"
    # Two payments, one reversed: gross 2 / Rp 200.000, reversals 1 / Rp 100.000, net 1 / Rp 100.000.
    # No relief program: nothing taken off the principal, no penalty waived.
    expected = ["PBB", "2", "Rp 200.000", "Rp 0", "Rp 200.000", "1", "Rp 100.000", "1", "Rp 100.000", "Rp 0", "Rp 0"]
    assert (await _cells(page, "table tbody tr >> nth=0 >> td"))[1:] == expected
    assert (await _cells(page, "table tfoot tr.total td")) == ["SEMUA"] + expected[1:]

    await page.click("#tutup")
    assert await page.inner_text("h1") == f"Tutup tanggal bisnis {day}"
    await page.click("#konfirmasi-tutup")
    await page.wait_for_url(site.url(f"/console/setelmen?tanggal={day}&pesan=ditutup"))
    assert await page.inner_text("p.notice") == "Tanggal bisnis ditutup."
    assert await page.inner_text("#status-tanggal") == "Ditutup"
    facts = dict(zip(await _cells(page, "dl.facts dt"), await _cells(page, "dl.facts dd")))
    assert facts["Ditutup oleh"] == "siti"
    assert await page.locator("#tutup").count() == 0  # a closed date offers no close
    assert (await _cells(page, "table tfoot tr.total td")) == ["SEMUA"] + expected[1:]

    async with page.expect_download() as waiting:
        await page.click("text=Unduh laporan PDF")
    download = await waiting.value
    assert download.suggested_filename == f"setelmen-{day}.pdf"
    with open(await download.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"
    async with page.expect_download() as waiting:
        await page.click("text=Unduh laporan CSV")
    download = await waiting.value
    with open(await download.path(), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("business_date,bank_code,bank_name,tax,payments_count")
    assert lines[1].startswith(f"{day},110,BANK PEMBANGUNAN DAERAH,PBB,2,200000,0,200000,1,100000,1,100000")
    assert lines[2].startswith(f"{day},TOTAL,,ALL,2,200000,0,200000,1,100000,1,100000")


async def test_support_sees_no_close_and_forged_or_tokenless_posts_are_refused(site, signed_in):
    day = site.day.isoformat()
    page = await signed_in("budi")
    await page.goto(site.url(f"/console/setelmen?tanggal={day}"))
    assert await page.inner_text("#status-tanggal") == "Terbuka"
    assert await page.locator("#tutup").count() == 0
    assert await page.locator("#berkas").count() == 0  # no reconciliation upload either
    assert await page.locator("text=Unduh laporan PDF").count() == 1  # reading is allowed

    # The confirmation page and a forged close (with the right CSRF token) are refused: 403, HTML, date open.
    response = await page.goto(site.url(f"/console/setelmen/{day}/tutup"))
    assert response.status == 403
    assert await page.inner_text("h1") == "Akses ditolak"
    assert await page.inner_text("p.error") == "Peran Anda tidak berhak membuka halaman atau melakukan tindakan ini."
    await page.goto(site.url("/console/"))
    token = await page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    forged = await page.request.post(site.url(f"/console/setelmen/{day}/tutup"), form={"csrf_token": token},
                                     max_redirects=0)
    assert forged.status == 403
    assert forged.headers["content-type"].startswith("text/html")
    assert "Akses ditolak" in await forged.text()
    await page.goto(site.url(f"/console/setelmen?tanggal={day}"))
    assert await page.inner_text("#status-tanggal") == "Terbuka"

    # Any POST without the session's CSRF token is refused, whatever the role allows.
    transaction = await page.request.get(site.url(f"/console/transaksi?ntpd={site.ntpds[0]}"))
    assert transaction.status == 200
    no_token = await page.request.post(site.url("/console/antrian/tombstone/1"),
                                       form={"resolution": "accepted", "catatan": "tanpa token"}, max_redirects=0)
    assert no_token.status == 403
    assert "token keamanan (CSRF)" in await no_token.text()
    wrong = await page.request.post(site.url("/console/keluar"), form={"csrf_token": "x" * 43}, max_redirects=0)
    assert wrong.status == 403
    # Still signed in: a refused sign-out did nothing.
    assert (await page.request.get(site.url("/console/"), max_redirects=0)).status == 200


async def test_sign_in_refusals_expiry_and_sign_out(site, new_context, sign_in_page):
    context = await new_context()
    page = await context.new_page()
    # No session: every page sends you to the sign-in page, and back afterwards.
    await page.goto(site.url("/console/antrian?bank=110"))
    assert page.url == site.url("/console/masuk?lanjut=%2Fconsole%2Fantrian%3Fbank%3D110")
    assert await page.inner_text("h1") == "Masuk"
    await page.fill("#username", "budi")
    await page.fill("#password", "wrong password!!")
    await page.click("button:text('Masuk')")
    assert await page.inner_text("p.error") == "Nama pengguna atau kata sandi salah."
    for _ in range(4):
        await page.fill("#password", "wrong password!!")
        await page.click("button:text('Masuk')")
    # The sixth attempt, even with the right password, is refused until the window has passed (429).
    await page.fill("#password", "correct horse battery")
    async with page.expect_response(site.url("/console/masuk")) as answer:
        await page.click("button:text('Masuk')")
    response = await answer.value
    assert response.status == 429 and 800 <= int(response.headers["retry-after"]) <= 900
    message = await page.inner_text("p.error")
    assert message.startswith("Terlalu banyak percobaan masuk yang gagal. Coba lagi setelah ")
    assert message.endswith(" menit lagi).") and "WIB" in message

    # Another user signs in, lands where they were going; an ended session goes back to the sign-in page.
    await page.goto(site.url("/console/antrian?bank=110"))
    await page.fill("#username", "siti")
    await page.fill("#password", "correct horse battery")
    await page.click("button:text('Masuk')")
    await page.wait_for_url(site.url("/console/antrian?bank=110"))
    assert await page.inner_text("h1") == "Antrian kerja"
    run = staff_cli(site.console, "revoke", "siti")
    assert run.returncode == 0, run.stderr
    await page.goto(site.url("/console/setelmen"))
    assert page.url == site.url("/console/masuk?habis=1&lanjut=%2Fconsole%2Fsetelmen")
    assert await page.inner_text("p.notice") == "Sesi Anda telah berakhir. Silakan masuk kembali."

    await sign_in_page(page, "ani")
    await page.click("button:text('Keluar')")
    await page.wait_for_url(site.url("/console/masuk?pesan=keluar"))
    assert await page.inner_text("p.notice") == "Anda telah keluar."
    await page.goto(site.url("/console/"))
    assert page.url.startswith(site.url("/console/masuk"))
