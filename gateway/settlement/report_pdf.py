"""The settlement report as a PDF for the treasury (Kas Daerah): the same table as the CSV, per bank and
tax, with the totals, the close time, the operator and a signature line (spec/operations.md)."""
from __future__ import annotations

import datetime
import io
from collections.abc import Iterable, Mapping

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from gateway.proofs.receipt import rupiah
from gateway.settlement.invariants import REPORT_KEYS, Totals, report_table

HEADER = ("Bank", "Pajak", "Jumlah bayar", "Pokok", "Denda", "Nilai bayar", "Jumlah batal", "Nilai batal",
          "Jumlah bersih", "Nilai bersih", "Pengurangan", "Denda dihapus")


def table_rows(items: Iterable[Totals], bank_names: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The rows of the report table, TOTAL last; money as Rp text, counts as numbers."""
    lines, sums = report_table(items)
    rows = [(f"{t.bank} {bank_names.get(t.bank, '')}".strip(), t.tax, *_cells(values)) for t, values in lines]
    rows.append(("TOTAL", "ALL", *_cells(sums)))
    return rows


def _cells(values) -> tuple[str, ...]:
    counts = {"payments_count", "reversals_count", "net_count"}
    return tuple(str(v) if k in counts else rupiah(v) for k, v in zip(REPORT_KEYS, values))


def settlement_pdf(*, day: datetime.date, items: Iterable[Totals], bank_names: Mapping[str, str],
                   region_name: str, state: str, closed_at: datetime.datetime | None, closed_by: str | None,
                   tz) -> bytes:
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=f"Laporan setoran {day.isoformat()}",
                            invariant=1)
    status = (f"Ditutup {closed_at.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S %Z')} oleh {closed_by}"
              if state == "closed" and closed_at else f"Belum ditutup (status: {state}); angka berjalan")
    story = [
        Paragraph(f"PEMERINTAH {region_name} — BADAN PENDAPATAN DAERAH", styles["Title"]),
        Paragraph(f"Laporan penerimaan PBB-P2 dan BPHTB per bank — tanggal buku {day.isoformat()}",
                  styles["Heading2"]),
        Paragraph(status, styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    rows = table_rows(items, bank_names)
    table = Table([HEADER, *rows], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("LINEABOVE", (0, -1), (-1, -1), 1.0, colors.black),
    ]))
    story += [table, Spacer(1, 18 * mm),
              Paragraph("Kas Daerah / Bendahara Penerimaan:", styles["Normal"]), Spacer(1, 18 * mm),
              Paragraph("(________________________________)  tanda tangan dan nama jelas", styles["Normal"])]
    doc.build(story)
    return buffer.getvalue()
