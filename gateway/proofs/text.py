"""How proofs print money, dates and the Bapenda's name in Bahasa Indonesia: shared by the PDFs (receipt, SKL,
payment history) and the public check's HTML page. Pure functions, no reportlab, so the web page does not
load the PDF machinery."""
from __future__ import annotations

import datetime

MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
          "Oktober", "November", "Desember")
ZONES = {7 * 3600: "WIB", 8 * 3600: "WITA", 9 * 3600: "WIT"}
AGENCY_NAME = "BADAN PENDAPATAN DAERAH"
TAX_TITLES = {"PBB": "PBB-P2", "BPHTB": "BPHTB"}


def rupiah(amount: int) -> str:
    """`Rp154.500`: whole rupiah with dots between thousands (domain.md "Money")."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"amount must be whole rupiah (int), got {amount!r}")
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


def tanggal(day: datetime.date) -> str:
    """`23 November 2026`: a date as Indonesian receipts spell it."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def waktu(moment: datetime.datetime) -> str:
    """`23 November 2026 09:15:02 WIB`: a moment in its own offset, named as Indonesia names its zones."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("moment must be timezone-aware")
    zone = ZONES.get(int(offset.total_seconds())) or moment.strftime("UTC%z")
    return f"{tanggal(moment.date())} {moment:%H:%M:%S} {zone}"


def government(region_name: str) -> str:
    """`PEMERINTAH KOTA BEKASI` from the configured `[region] name`."""
    name = " ".join(str(region_name).split()).upper()
    if not name:
        raise ValueError("region_name is empty")
    return name if name.startswith("PEMERINTAH") else f"PEMERINTAH {name}"
