"""How the console writes values: rupiah, local times, NOPs, and the Indonesian names of states and classes."""
from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.errors import FormatError
from gateway.domain.nop import display_nop

STATUS = {"paid": "Lunas", "reversed": "Dibatalkan (reversal)"}
DATE_STATE = {"open": "Terbuka", "closing": "Sedang ditutup", "closed": "Ditutup"}
RECON_CLASS = {"matched": "Cocok", "amount_mismatch": "Selisih jumlah", "status_mismatch": "Selisih status",
               "missing_at_gateway": "Tidak ada di gateway", "missing_at_bank": "Tidak ada di bank"}
RESOLUTION = {"accepted": "Diterima", "corrected": "Dikoreksi dengan reversal", "escalated": "Dieskalasi"}
ROLE = {"support": "Dukungan (support)", "treasury": "Kas Daerah (treasury)", "admin": "Administrator"}
# ISO 8583 fields by name (spec/iso8583.md "Fields"); values as the message log kept them (masked).
ISO_FIELDS = {
    "2": "PAN", "3": "Kode proses", "4": "Jumlah (Rp)", "7": "Waktu transmisi (UTC)", "11": "STAN",
    "12": "Jam lokal", "13": "Tanggal lokal", "15": "Tanggal setelmen", "18": "Jenis kanal", "32": "Kode bank",
    "33": "Institusi penerus", "37": "RRN", "39": "RC", "41": "ID terminal", "42": "ID penerima kartu",
    "43": "Nama/lokasi penerima", "47": "NTPD", "48": "NTB", "49": "Mata uang", "61": "ID tagihan",
    "62": "Profil tagihan", "63": "Kode Validasi", "64": "MAC", "70": "Kode manajemen jaringan",
    "90": "Data pesan asli", "128": "MAC",
    # The HTTP channel's rows
    "method": "Metode", "path": "Path", "body_bytes": "Ukuran isi (byte)", "status": "Status HTTP",
}
# The slots of field 62's bill profiles (spec/iso8583.md "Field 62"), shown as sub-fields 62.<slot>.
PROFILE_SLOTS = {
    "nop": "NOP", "tax_year": "Tahun Pajak", "taxpayer_name": "Nama Wajib Pajak", "object_address": "Alamat objek",
    "kelurahan": "Kelurahan", "kecamatan": "Kecamatan", "region": "Kota/Kabupaten", "land_area": "Luas tanah (m²)",
    "building_area": "Luas bangunan (m²)", "due_date": "Jatuh tempo", "principal": "Pokok", "penalty": "Denda",
    "total": "Total", "months_late": "Bulan terlambat", "other_unpaid_years": "Tahun lain belum lunas",
    "registration_number": "Nomor SSPD", "nik_masked": "NIK (disamarkan)", "acquisition_type": "Jenis perolehan",
    "acquisition_value": "Nilai perolehan", "ppat_name": "PPAT", "valid_until": "Berlaku sampai",
}


def rupiah(value: Any) -> str:
    """``Rp 154.500`` (dots between thousands); empty for no value."""
    if value is None or value == "":
        return ""
    n = int(value)
    return ("-" if n < 0 else "") + "Rp " + f"{abs(n):,}".replace(",", ".")


def number(value: Any) -> str:
    return "" if value is None else f"{int(value):,}".replace(",", ".")


def local_time(value: datetime.datetime | None, tz: ZoneInfo) -> str:
    """``2026-11-30 14:03:05 WIB``-like: the region's wall clock, with its abbreviation."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")


def nop_of(bill_id: str | None, tax: str | None) -> str:
    """The NOP in display form of a PBB bill id (NOP + tax year); a BPHTB registration number as it is."""
    if not bill_id:
        return ""
    if tax == "PBB" and len(bill_id) >= 18:
        try:
            return display_nop(bill_id[:18])
        except FormatError:
            return bill_id
    return bill_id


def elapsed(seconds: float | None) -> str:
    """The time between two steps: ``+0,25 dtk``, ``+3 mnt 2 dtk``, ``+2 jam 5 mnt``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "+" + f"{seconds:.2f}".replace(".", ",") + " dtk"
    s = int(seconds)
    if s < 3600:
        return f"+{s // 60} mnt {s % 60} dtk"
    if s < 86400:
        return f"+{s // 3600} jam {s % 3600 // 60} mnt"
    return f"+{s // 86400} hari {s % 86400 // 3600} jam"


def filters(tz: ZoneInfo) -> dict[str, Any]:
    """The Jinja2 filters of the console's templates."""
    return {
        "rupiah": rupiah, "number": number, "waktu": lambda v: local_time(v, tz), "nop": nop_of,
        "status": lambda v: STATUS.get(v, v), "state": lambda v: DATE_STATE.get(v, v),
        "recon_class": lambda v: RECON_CLASS.get(v, v), "resolution": lambda v: RESOLUTION.get(v, v or ""),
        "role": lambda v: ROLE.get(v, v), "elapsed": elapsed,
        "blank": lambda v: "" if v is None else v,
    }
