"""A support agent's day in the console: search, a transaction's story, notes (spec/operations.md "Support
console"), in Debian's Chromium."""
from __future__ import annotations

import re

import pytest

from gateway.domain.nop import display_nop

pytestmark = pytest.mark.integration

NOP_REVERSED = "327501000100100020"  # NOPS[1] of conftest.py: paid, then reversed


async def test_support_searches_a_dotted_nop_reads_the_story_and_adds_a_note(site, signed_in):
    page = await signed_in("budi")
    assert await page.inner_text("h1") == "Beranda"
    assert await page.inner_text(".who") == "budi · Dukungan (support)"

    await page.click("nav >> text=Cari transaksi")
    dotted = display_nop(NOP_REVERSED)
    assert dotted == "32.75.010.001.001-0002.0"
    await page.fill("#nop", dotted)
    await page.click("button:text('Cari')")
    rows = page.locator("#hasil tbody tr")
    assert await rows.count() == 1
    cells = [c.strip() for c in await rows.nth(0).locator("td").all_inner_texts()]
    assert cells[1:11] == ["PBB", dotted, "2026", "110", site.ntpds[1], "", "", "Dibatalkan (reversal)",
                           site.day.isoformat(), "Rp 100.000"]
    assert cells[11] == "00"

    await rows.nth(0).locator("td").nth(0).locator("a").click()
    await page.wait_for_url(re.compile(r".*/console/transaksi/\d+$"))
    assert await page.inner_text("#ntpd") == site.ntpds[1]
    assert await page.inner_text("#status") == "Dibatalkan (reversal)"
    kinds = [k.strip() for k in await page.locator("#linimasa .kind").all_text_contents()]
    assert kinds.count("Pembayaran") == 1 and kinds.count("Reversal") == 1, kinds
    assert kinds.index("Pembayaran") < kinds.index("Reversal")
    payment = page.locator("#linimasa li.payment")
    assert await payment.locator("h3").text_content() == f"Pembayaran NTPD {site.ntpds[1]}"
    facts = dict(zip(await payment.locator("dt").all_text_contents(), await payment.locator("dd").all_text_contents()))
    assert facts == {"Bank": "110", "Kanal": "teller", "Lewat": "HTTP", "NTB": "NTB1", "Pokok": "Rp 100.000",
                     "Denda": "Rp 0", "Jumlah": "Rp 100.000", "Tanggal bisnis": site.day.isoformat()}
    reversal = page.locator("#linimasa li.reversal")
    facts = dict(zip(await reversal.locator("dt").all_text_contents(), await reversal.locator("dd").all_text_contents()))
    assert facts == {"Jumlah": "Rp 100.000", "Lewat": "HTTP", "Alasan": "nasabah membatalkan"}
    # The bank's HTTP answers as logged, each field by name.
    answers = page.locator("#linimasa li.message", has_text="Pesan keluar (HTTP)")
    assert await answers.count() == 2
    assert await answers.nth(0).locator("table.fields tbody tr").first.locator("td").all_text_contents() == [
        "status", "Status HTTP", "200"]
    since = await page.locator("#linimasa .since").all_inner_texts()
    assert len(since) == await page.locator("#linimasa li").count() - 1
    assert all(re.fullmatch(r"\+(\d+,\d\d dtk|\d+ mnt \d+ dtk|\d+ jam \d+ mnt|\d+ hari \d+ jam)", s) for s in since)

    await page.fill("#isi-catatan", "Nasabah menelepon: reversal <dikonfirmasi> teller.")
    await page.click("button:text('Simpan catatan')")
    await page.wait_for_url(re.compile(r".*\?pesan=catatan#catatan$"))
    assert await page.inner_text("p.notice") == "Catatan ditambahkan."
    note = page.locator("#linimasa li.note")
    assert await note.count() == 1
    assert await note.locator("h3").text_content() == "Catatan staf budi"
    assert await note.locator("dd").inner_text() == "Nasabah menelepon: reversal <dikonfirmasi> teller."


async def test_an_iso_payment_story_shows_each_message_field_by_name(site, signed_in):
    async with site.past.client() as iso:
        paid = await iso.request(iso.payment("pbb", "3275010001001000302026", 100_000, ntb="ISO0001"))
        assert paid["39"] == "00", paid
    page = await signed_in("budi")
    await page.goto(site.url(f"/console/transaksi?ntpd={paid['47']}"))
    cells = [c.strip() for c in await page.locator("#hasil tbody tr td").all_text_contents()]
    assert cells[1:9] == ["PBB", "32.75.010.001.001-0003.0", "2026", "110", paid["47"], paid["37"], paid["11"], "Lunas"]
    await page.locator("#hasil tbody tr td a").first.click()
    steps = page.locator("#linimasa li.message")
    kinds = [k.strip() for k in await steps.locator(".kind").all_text_contents()]
    assert kinds == ["Pesan masuk (ISO 8583)", "Pesan keluar (ISO 8583)"]
    assert await steps.locator("h3").all_text_contents() == [
        "Pesan masuk (ISO 8583) 0200 541019", "Pesan keluar (ISO 8583) 0210 541019 — RC 00"]
    answer = {cells[0]: cells[1:] for cells in [
        [c.strip() for c in await row.locator("td").all_text_contents()]
        for row in await steps.nth(1).locator("table.fields tbody tr").all()]}
    assert answer["4"] == ["Jumlah (Rp)", "000000100000"]
    assert answer["11"] == ["STAN", paid["11"]]
    assert answer["39"] == ["RC", "00"]
    assert answer["47"] == ["NTPD", paid["47"]]
    assert answer["48"] == ["NTB", "ISO0001"]
    assert answer["61"] == ["ID tagihan", "3275010001001000302026"]
    assert answer["63"][0] == "Kode Validasi"
    # The step after the request has the time between them.
    assert re.fullmatch(r"\+\d+,\d\d dtk", (await steps.nth(1).locator(".since").text_content()))
