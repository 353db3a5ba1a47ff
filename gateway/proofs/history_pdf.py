"""Riwayat pembayaran: one NOP's PBB-P2 payment history as an A4 PDF (spec/operations.md "Support console"): per
tax year what was paid (amount, NTPD, date) and what is still owed today, with the total owed; reversed payments
are listed under the table. Not a proof: it carries no signature and says so (the SKL is the certificate).

The caller computes every amount (the staff service, with the domain's assessment); this module only lays the
lines out, on as many pages as they need.
"""
from __future__ import annotations

import datetime
import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from gateway.domain.nop import display_nop

from .pdf import fit, pdf_text
from .text import AGENCY_NAME, government, rupiah, tanggal, waktu

STATUS_WORDS = {"paid": "Lunas", "unpaid": "Belum lunas", "cancelled": "Dibatalkan"}


@dataclass(frozen=True)
class HistoryYear:
    """One tax year: the bill, its active payment (if any) and what is owed today (0 when paid or cancelled)."""

    tax_year: int
    status: str  # unpaid / paid / cancelled
    principal: int
    paid_total: int  # 0 without an active payment
    ntpd: str | None
    paid_on: datetime.date | None  # business date of the active payment
    owed_penalty: int
    owed_total: int


@dataclass(frozen=True)
class ReversedPayment:
    tax_year: int
    ntpd: str
    total: int
    business_date: datetime.date
    reversed_at: datetime.datetime


_PAGE_W, _PAGE_H = A4
_MARGIN = 42.0
_FONT, _BOLD = "Helvetica", "Helvetica-Bold"
_ROW_H = 15.0
# (title, x of the column's left edge, or of its right edge for amounts, from the margin; alignment)
_COLUMNS = (("Tahun", 0, "l"), ("Status", 32, "l"), ("Pokok", 150, "r"), ("Dibayar", 220, "r"),
            ("NTPD", 228, "l"), ("Tgl. Buku", 322, "l"), ("Denda", 450, "r"), ("Terutang", 511, "r"))


def history_pdf(
    *,
    nop: str,
    taxpayer: str,
    object_address: str,
    years: Sequence[HistoryYear],
    reversed_payments: Sequence[ReversedPayment] = (),
    region_name: str,
    printed_at: datetime.datetime,
    printed_by: str,
    agency_name: str = AGENCY_NAME,
) -> bytes:
    """The history as PDF bytes. ``printed_at`` is aware (region time); amounts are whole rupiah."""
    if printed_at.utcoffset() is None:
        raise ValueError("printed_at must be timezone-aware")
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(f"Riwayat Pembayaran PBB-P2 {nop}")
    c.setAuthor(pdf_text(government(region_name)))
    c.setCreator("gateway")
    page = 1

    def header() -> float:
        y = _PAGE_H - _MARGIN
        for line in (government(region_name), agency_name.strip().upper()):
            c.setFont(_BOLD, 11)
            c.drawCentredString(_PAGE_W / 2, y, fit(line, _BOLD, 11, _PAGE_W - 2 * _MARGIN))
            y -= 14
        c.setLineWidth(1)
        c.line(_MARGIN, y, _PAGE_W - _MARGIN, y)
        y -= 24
        c.setFont(_BOLD, 14)
        c.drawCentredString(_PAGE_W / 2, y, "RIWAYAT PEMBAYARAN PBB-P2")
        y -= 24
        for label, value in (("NOP", _nop(nop)), ("Nama Wajib Pajak", taxpayer), ("Alamat Objek", object_address)):
            c.setFont(_FONT, 9.5)
            c.drawString(_MARGIN, y, label)
            c.setFont(_BOLD if label == "NOP" else _FONT, 9.5)
            c.drawString(_MARGIN + 100, y, fit(value, _FONT, 9.5, _PAGE_W - 2 * _MARGIN - 100))
            y -= 13
        y -= 10
        c.setFont(_BOLD, 8.5)
        for title, x, align in _COLUMNS:
            _cell(c, x, y, title, align)
        c.setLineWidth(0.6)
        c.line(_MARGIN, y - 5, _PAGE_W - _MARGIN, y - 5)
        return y - _ROW_H - 2

    def footer() -> None:
        c.setFont(_FONT, 7.5)
        c.drawString(_MARGIN, _MARGIN - 14, pdf_text(f"Dicetak {waktu(printed_at)} oleh {printed_by}. Bukan tanda"
                                                     " bukti pembayaran; jumlah terutang dihitung per tanggal cetak."))
        c.drawRightString(_PAGE_W - _MARGIN, _MARGIN - 14, f"Halaman {page}")

    def room(y: float, needed: float = _ROW_H) -> float:
        nonlocal page
        if y - needed >= _MARGIN:
            return y
        footer()
        c.showPage()
        page += 1
        return header()

    y = header()
    c.setFont(_FONT, 8.5)
    if not years:
        c.drawString(_MARGIN, y, "Tidak ada tagihan PBB-P2 untuk NOP ini.")
        y -= _ROW_H
    for line in years:
        y = room(y)
        c.setFont(_FONT, 8.5)
        cells = (str(line.tax_year), STATUS_WORDS.get(line.status, line.status), rupiah(line.principal),
                 rupiah(line.paid_total) if line.ntpd else "-", line.ntpd or "-",
                 tanggal(line.paid_on) if line.paid_on else "-",
                 rupiah(line.owed_penalty) if line.status == "unpaid" else "-", rupiah(line.owed_total))
        for (_, x, align), text in zip(_COLUMNS, cells, strict=True):
            _cell(c, x, y, text, align)
        y -= _ROW_H
    y = room(y, 2 * _ROW_H)
    c.setLineWidth(0.6)
    c.line(_MARGIN, y + _ROW_H - 5, _PAGE_W - _MARGIN, y + _ROW_H - 5)
    c.setFont(_BOLD, 9)
    paid = sum(line.paid_total for line in years if line.ntpd)
    owed = sum(line.owed_total for line in years)
    _cell(c, 0, y, "Jumlah", "l")
    _cell(c, 220, y, rupiah(paid), "r")
    _cell(c, 511, y, rupiah(owed), "r")
    y -= 2 * _ROW_H

    if reversed_payments:
        y = room(y, 2 * _ROW_H)
        c.setFont(_BOLD, 9)
        c.drawString(_MARGIN, y, "Pembayaran yang dibatalkan (tidak dihitung sebagai pembayaran)")
        y -= _ROW_H
        for gone in reversed_payments:
            y = room(y)
            c.setFont(_FONT, 8.5)
            c.drawString(_MARGIN, y, pdf_text(
                f"{gone.tax_year}  NTPD {gone.ntpd}  {rupiah(gone.total)}  tanggal buku {tanggal(gone.business_date)}"
                f"  dibatalkan {waktu(gone.reversed_at)}"))
            y -= _ROW_H
    footer()
    c.showPage()
    c.save()
    return buf.getvalue()


def _cell(c: Canvas, x: float, y: float, text: str, align: str) -> None:
    text = pdf_text(text)
    if align == "r":
        c.drawRightString(_MARGIN + x, y, text)
    else:
        c.drawString(_MARGIN + x, y, text)


def _nop(nop: str) -> str:
    try:
        return display_nop(nop)
    except ValueError:
        return nop

