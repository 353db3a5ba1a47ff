"""Reconciliation through the console: treasury uploads a bank's file, support works the queue (open items
and unmatched reversals) until it is empty (spec/operations.md "Reconciliation report", "Support console")."""
from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.integration

HEADER = "business_date,bank_code,ntpd,ntb,rrn,stan,transmission_datetime,tax,bill_id,amount,status\n"


async def tombstone(site) -> None:
    """A reversal over ISO 8583 of a payment the gateway never had: a tombstone on D."""
    async with site.past.client() as iso:
        original = iso.payment("pbb", "3275010001001000302026", 100_000)  # built, never sent
        answer = await iso.request(iso.reversal(original))
        assert answer["39"] == "00", answer


async def test_upload_then_resolve_items_and_tombstones_until_the_queue_is_empty(site, signed_in):
    await tombstone(site)
    day = site.day.isoformat()
    csv_text = HEADER + (f"{day},110,{site.ntpds[0]},NTB0,,,,PBB,3275010001001000102026,90000,paid\n"
                         f"{day},110,{site.ntpds[1]},NTB1,,,,PBB,3275010001001000202026,100000,reversed\n")

    treasury = await signed_in("siti")
    await treasury.goto(site.url(f"/console/setelmen?tanggal={day}"))
    await treasury.select_option("#bank", "110")
    await treasury.set_input_files("#berkas", files=[{"name": "bank110.csv", "mimeType": "text/csv",
                                                       "buffer": csv_text.encode()}])
    await treasury.click("button:text('Unggah dan cocokkan')")
    assert await treasury.inner_text("h1") == f"Laporan rekonsiliasi {day} — bank 110"
    summary = dict(zip(await treasury.locator("#ringkasan dt").all_text_contents(),
                       await treasury.locator("#ringkasan dd").all_text_contents()))
    assert summary == {"Cocok": "1", "Selisih jumlah": "1", "Selisih status": "0", "Tidak ada di gateway": "0",
                       "Tidak ada di bank": "0", "Item baru di antrian": "1"}
    rows = treasury.locator("#baris-rekonsiliasi tbody tr")
    assert [c.strip() for c in await rows.nth(0).locator("td").all_text_contents()] == [
        "Selisih jumlah", site.ntpds[0], "110", "PBB", "32.75.010.001.001-0001.0", "Rp 100.000", "Rp 90.000", "paid",
        "paid", "2"]
    # The settlement page lists the report.
    await treasury.goto(site.url(f"/console/setelmen?tanggal={day}"))
    report = [c.strip() for c in await treasury.locator("#laporan-rekonsiliasi tbody tr td").all_text_contents()]
    assert report[1:5] == ["110", "upload:110:bank110.csv", "Cocok: 1, Selisih jumlah: 1", "1"]

    support = await signed_in("budi")
    await support.goto(site.url("/console/antrian"))
    items = support.locator("#item-rekonsiliasi tbody tr")
    assert await items.count() == 1
    cells = [c.strip() for c in await items.nth(0).locator("td").all_text_contents()][:10]
    assert cells[1:10] == [day, "110", "Selisih jumlah", site.ntpds[0], "PBB 32.75.010.001.001-0001.0", "Rp 100.000",
                           "Rp 90.000", "paid / paid", "2"]
    tombs = support.locator("#tombstone tbody tr")
    assert await tombs.count() == 1
    cells = [c.strip() for c in await tombs.nth(0).locator("td").all_text_contents()][:6]
    assert cells[1:3] == [day, "110"] and cells[5] == "Rp 100.000"

    # Filters: another date, or another bank's view, shows nothing.
    other = (site.day - dt.timedelta(days=1)).isoformat()
    await support.goto(site.url(f"/console/antrian?tanggal={other}&bank=110"))
    assert await support.locator("#item-rekonsiliasi tbody tr").all_text_contents() == [
        "Tidak ada item rekonsiliasi terbuka."]
    assert await support.locator("#tombstone tbody tr").all_text_contents() == [
        "Tidak ada reversal tanpa transaksi asal."]

    await support.goto(site.url(f"/console/antrian?tanggal={day}&bank=110"))
    item = support.locator("#item-rekonsiliasi tbody tr").nth(0)
    await item.locator("select").select_option("escalated")
    await item.locator("textarea").fill("Bank mencatat Rp 90.000; diteruskan ke Kas Daerah.")
    await item.locator("button").click()
    await support.wait_for_url(site.url(f"/console/antrian?tanggal={day}&bank=110&pesan=selesai"))
    assert await support.inner_text("p.notice") == "Item diselesaikan dan keluar dari antrian."
    assert await support.locator("#item-rekonsiliasi tbody tr").all_text_contents() == [
        "Tidak ada item rekonsiliasi terbuka."]
    assert await support.locator("#tombstone tbody tr").count() == 1

    tomb = support.locator("#tombstone tbody tr").nth(0)
    await tomb.locator("select").select_option("accepted")
    await tomb.locator("textarea").fill("Bank mengirim reversal tanpa transaksi asal; tidak ada uang berpindah.")
    await tomb.locator("button").click()
    await support.wait_for_url(site.url(f"/console/antrian?tanggal={day}&bank=110&pesan=selesai"))
    assert await support.locator("#tombstone tbody tr").all_text_contents() == [
        "Tidak ada reversal tanpa transaksi asal."]

    # A resolution without a note is refused; the item's story shows the reconciliation and its resolution.
    await support.goto(site.url("/console/transaksi?ntpd=" + site.ntpds[0]))
    await support.locator("#hasil tbody tr td a").first.click()
    kinds = [k.strip() for k in await support.locator("#linimasa .kind").all_text_contents()]
    assert "Rekonsiliasi" in kinds and "Rekonsiliasi diselesaikan" in kinds
    resolved = support.locator("#linimasa li.recon", has_text="Rekonsiliasi diselesaikan")
    assert dict(zip(await resolved.locator("dt").all_text_contents(),
                    await resolved.locator("dd").all_text_contents())) == {
        "Penyelesaian": "Dieskalasi", "Catatan": "Bank mencatat Rp 90.000; diteruskan ke Kas Daerah."}
