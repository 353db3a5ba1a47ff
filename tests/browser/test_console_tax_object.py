"""The console's "Objek pajak" page (spec/operations.md "Support console"): one NOP's tax years with what is due
now and its payments; the payment-history PDF, the Surat Keterangan Lunas (spec/domain.md: a signed document
checked at the public check and offline by ``gateway proof verify``) and the receipt reprint marked SALINAN, in
Debian's Chromium. Every read and print is in the audit log."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

from billdata import add_pbb
from gateway.domain.nop import display_nop
from helpers.pdf import pdf_text, qr_codes

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
NOP = "327501000100100010"  # NOPS[0] of conftest.py: paid for 2026 on the past business date, not reversed
DOTTED = display_nop(NOP)
OLD_PRINCIPAL = 80_000  # 2022, due before 2024: 2% a month, capped at 24 months (48%)


async def download(page, button) -> tuple[str, bytes]:
    async with page.expect_download() as waiting:
        await button.click()
    done = await waiting.value
    return done.suggested_filename, Path(await done.path()).read_bytes()


async def cells(row) -> list[str]:
    return [c.strip() for c in await row.locator("th, td").all_inner_texts()]


def proof_verify(path: Path, keys_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "proof", "verify", str(path), "--keys", str(keys_path)],
                          capture_output=True, text=True, timeout=60, cwd=path.parent)


async def test_support_reads_a_nop_prints_its_history_issues_an_skl_and_reprints_a_receipt(site, signed_in, db,
                                                                                           tmp_path):
    await add_pbb(db, nop=NOP, year=2022, principal=OLD_PRINCIPAL, due=dt.date(2022, 8, 31))
    ntpd = site.ntpds[0]
    page = await signed_in("budi")

    # From the Beranda's form, the NOP typed with dots.
    await page.fill("#objek-nop", DOTTED)
    await page.click("#cari-objek button")
    await page.wait_for_url(site.url(f"/console/objek/{DOTTED}"))
    assert await page.inner_text("h1") == f"Objek pajak {DOTTED}"
    assert await page.inner_text("#wajib-pajak") == "SITI AMINAH"
    years = page.locator("#tahun-pajak tbody tr")
    assert await years.count() == 2
    assert await cells(years.nth(0)) == ["2026", "Lunas", "2099-08-31", "Rp 100.000", "Rp 0", "", "Rp 0", ntpd,
                                         "Terbitkan Surat Keterangan Lunas 2026"]
    assert await cells(years.nth(1)) == ["2022", "Belum lunas", "2022-08-31", "Rp 80.000", "Rp 38.400", "", "Rp 118.400",
                                         "", ""]
    assert await page.inner_text("#total-terutang") == "Rp 118.400"
    payments = page.locator("#daftar-pembayaran tbody tr")
    assert await payments.count() == 1
    paid = await cells(payments.nth(0))
    assert paid[:10] == [ntpd, "2026", "110", "teller", "NTB0", "Rp 100.000", "Rp 0", "Rp 100.000",
                         site.day.isoformat(), "Lunas"]
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", paid[10]), paid
    story_href = await payments.nth(0).locator("a").get_attribute("href")
    assert re.fullmatch(r"/console/transaksi/\d+", story_href)
    assert await page.inner_text("#daftar-skl tbody") == "Belum ada Surat Keterangan Lunas untuk NOP ini."
    # The same page by the NOP's digits.
    assert (await page.request.get(site.url(f"/console/objek/{NOP}"))).status == 200

    # Riwayat pembayaran: per year what was paid and what is still owed.
    name, history = await download(page, page.locator("button:text('Cetak riwayat pembayaran')"))
    assert name == f"riwayat-pembayaran-{NOP}.pdf" and history.startswith(b"%PDF-")
    text = pdf_text(history)
    for shown in ("2026", "2022", "Lunas", "Belum lunas", ntpd, "Rp100.000", "Rp80.000", "Rp38.400", "Rp118.400"):
        assert shown in text, (shown, text)

    # An SKL for a year that is not paid (a stale form's year): refused with the service's reason, none issued.
    await page.locator("#tahun-2026 input[name=tahun]").evaluate("input => { input.value = '2022'; }")
    async with page.expect_response(lambda r: r.url.endswith("/skl")) as refused:
        await page.click("button:text('Terbitkan Surat Keterangan Lunas 2026')")
    assert (await refused.value).status == 409
    assert await page.inner_text("#penolakan") == "Surat Keterangan Lunas tidak diterbitkan: Tahun pajak 2022 belum lunas."
    assert await db.fetchval("SELECT count(*) FROM skl_certificates") == 0

    # The paid year: issued, then offered as PDF and as the signed JSON.
    await page.click("button:text('Terbitkan Surat Keterangan Lunas 2026')")
    number = f"SKL-{ntpd}-01"
    await page.wait_for_url(site.url(f"/console/objek/{DOTTED}?terbit={number}#skl"))
    assert await page.inner_text("#skl-baru p") == f"Surat Keterangan Lunas {number} diterbitkan."
    assert await cells(years.nth(0)) == ["2026", "Lunas", "2099-08-31", "Rp 100.000", "Rp 0", "", "Rp 0", ntpd,
                                         f"{number}\nTerbitkan Surat Keterangan Lunas 2026"]
    issued = await cells(page.locator("#daftar-skl tbody tr").nth(0))
    assert issued[:4] == [number, "2026", ntpd, "budi"] and issued[5] == "Berlaku"
    shots = SCREENSHOTS if os.environ.get("GATEWAY_CONSOLE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / "10-objek-pajak.png"), full_page=True)

    name, saved_bytes = await download(page, page.locator("#skl-baru button:text('Unduh SKL bertanda tangan (JSON)')"))
    assert name == f"{number}.json"
    saved = json.loads(saved_bytes)
    assert set(saved) == {"document", "signature", "kid", "validation_code"}
    document = saved["document"]
    assert (document["type"], document["number"], document["ntpd"], document["bill"], document["tax_year"],
            document["total"], document["issued_by"]) == ("skl", number, ntpd, NOP, 2026, 100_000, "budi")
    code = saved["validation_code"].replace("-", "")
    verify_url = f"{site.console.http_url}/v1/proofs/{number}?code={code}"

    name, skl_pdf = await download(page, page.locator("#skl-baru button:text('Unduh SKL (PDF)')"))
    assert name == f"{number}.pdf" and skl_pdf.startswith(b"%PDF-")
    assert qr_codes(skl_pdf) == [verify_url]
    assert number in pdf_text(skl_pdf)

    # Checkable at the public check, and offline with the published keys.
    checked = await page.request.get(verify_url, headers={"Accept": "application/json"})
    assert checked.status == 200 and (await checked.json())["status"] == "valid"
    keys = await page.request.get(site.url("/v1/proofs/keys"))
    assert keys.status == 200
    keys_path, saved_path = tmp_path / "keys.json", tmp_path / "skl.json"
    keys_path.write_bytes(await keys.body())
    saved_path.write_bytes(saved_bytes)
    done = proof_verify(saved_path, keys_path)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith(f"VALID: signature verified - SKL {number} of NTPD {ntpd}"), done.stdout

    # The receipt reprinted from the transaction's story: marked SALINAN.
    await page.locator("#daftar-pembayaran a").first.click()
    await page.wait_for_url(site.url(story_href))
    name, copy = await download(page, page.locator("button:text('Cetak ulang struk (SALINAN)')"))
    assert name == f"struk-{ntpd}-salinan.pdf" and copy.startswith(b"%PDF-")
    copy_text = pdf_text(copy)
    assert "SALINAN" in copy_text and ntpd in copy_text

    rows = await db.fetch("SELECT action, target, detail::text FROM audit_log WHERE actor = 'budi' ORDER BY id")
    assert [r["action"] for r in rows[:2]] == ["session.login", "dashboard.view"]  # signed in to the Beranda
    assert [(r["action"], r["target"]) for r in rows[2:]] == [
        ("tax_object.view", NOP), ("tax_object.view", NOP), ("tax_object.history_pdf", NOP),
        ("tax_object.view", NOP),  # the refusal's page: the refused issue itself wrote nothing
        ("skl.issue", number), ("tax_object.view", NOP), ("skl.download", number), ("skl.reprint", number),
        ("transactions.story", story_href.rsplit("/", 1)[1]), ("receipt.reprint", ntpd)]
    assert json.loads(rows[6]["detail"]) == {"via": "session", "nop": NOP, "tax_year": 2026, "ntpd": ntpd}


async def test_treasury_reads_and_prints_but_does_not_issue_and_the_page_passes_axe(site, signed_in, db):
    page = await signed_in("siti")
    response = await page.goto(site.url(f"/console/objek/{NOP}"))
    assert response.status == 200 and await page.inner_text("h1") == f"Objek pajak {DOTTED}"
    assert await page.locator("form.skl-terbit").count() == 0
    name, history = await download(page, page.locator("button:text('Cetak riwayat pembayaran')"))
    assert name == f"riwayat-pembayaran-{NOP}.pdf" and "Rp100.000" in pdf_text(history)
    token = await page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    refused = await page.request.post(site.url(f"/console/objek/{NOP}/skl"), max_redirects=0,
                                      form={"csrf_token": token, "tahun": "2026"})
    assert refused.status == 403
    assert await db.fetchval("SELECT count(*) FROM skl_certificates") == 0

    # A NOP of the wrong shape, one without bills, and the search form's answers.
    bad = await page.goto(site.url("/console/objek/12.34"))
    assert bad.status == 400 and await page.inner_text("h1") == "Permintaan tidak valid"
    unknown = await page.goto(site.url("/console/objek/327501000100199990"))
    assert unknown.status == 404
    assert "Tidak ada tagihan PBB-P2 untuk NOP 32.75.010.001.001-9999.0" in await page.inner_text("main")
    form_error = await page.goto(site.url("/console/objek?nop=abc"))
    assert form_error.status == 400 and "NOP harus 18 angka" in await page.inner_text("p.error")

    rows = await db.fetch("SELECT action, target, detail::text FROM audit_log WHERE actor = 'siti' ORDER BY id")
    assert [(r["action"], r["target"]) for r in rows][2:] == [
        ("tax_object.view", NOP), ("tax_object.history_pdf", NOP), ("denied", f"POST /console/objek/{NOP}/skl")]

    # Accessibility: axe-core on the page, the issue form and a certificate included (support's view).
    support = await signed_in("budi")
    await support.goto(site.url(f"/console/objek/{DOTTED}"))
    await support.click("button:text('Terbitkan Surat Keterangan Lunas 2026')")
    await support.wait_for_url(re.compile(r".*\?terbit=SKL-\d{18}-01#skl$"))
    for path in (support.url.removeprefix(site.console.http_url), "/console/objek", "/console/"):
        await support.goto(site.url(path))
        result = await Axe().run(support)
        serious = [(v["id"], v["impact"], v["help"]) for v in result.response["violations"]
                   if v["impact"] in ("serious", "critical")]
        assert serious == [], (path, serious)
