"""The transaction story's message fields (gateway/console/support_pages.py): named, masked as logged, and
field 62 decoded into its bill-profile slots with the ISO channel's own layout."""
from __future__ import annotations

import json
from datetime import date

from gateway.console.support_pages import _fields
from gateway.domain.assessment import Amount
from gateway.iso8583.profiles import pbb_profile
from gateway.service.results import BillView

NOP = "327501000100100010"
BILL = BillView(tax="PBB", bill_key=NOP + "2026", nop=NOP, tax_year=2026, taxpayer_name="Siti Aminah",
                object_address="Jl. Ahmad Yani 1", kelurahan="Marga Jaya", kecamatan="Bekasi Selatan",
                region="Kota Bekasi", land_area=120, building_area=90, status="unpaid", principal=150_000,
                due_date=date(2026, 8, 31))


def test_field_62_is_decoded_slot_by_slot():
    profile = pbb_profile(BILL, Amount(principal=150_000, penalty=4_500, total=154_500, months_late=2), (2025, 2024))
    rows = _fields(json.dumps({"39": "00", "62": profile, "2": {"len": 16}}))
    assert rows[0] == ("2", "PAN", "(disembunyikan, 16 karakter)")
    assert rows[1] == ("39", "RC", "00")
    assert rows[2] == ("62", "Profil tagihan", profile)
    assert rows[3:] == [
        ("62.nop", "NOP", NOP), ("62.tax_year", "Tahun Pajak", "2026"),
        ("62.taxpayer_name", "Nama Wajib Pajak", "Siti Aminah"), ("62.object_address", "Alamat objek", "Jl. Ahmad Yani 1"),
        ("62.kelurahan", "Kelurahan", "Marga Jaya"), ("62.kecamatan", "Kecamatan", "Bekasi Selatan"),
        ("62.region", "Kota/Kabupaten", "Kota Bekasi"), ("62.land_area", "Luas tanah (m²)", "120"),
        ("62.building_area", "Luas bangunan (m²)", "90"), ("62.due_date", "Jatuh tempo", "2026-08-31"),
        ("62.principal", "Pokok", "Rp 150.000"), ("62.penalty", "Denda", "Rp 4.500"), ("62.total", "Total", "Rp 154.500"),
        ("62.months_late", "Bulan terlambat", "2"), ("62.other_unpaid_years", "Tahun lain belum lunas", "2025, 2024"),
    ]


def test_a_field_62_that_is_no_profile_is_shown_only_as_logged():
    for value in ("X" * 287, "short", "X" * 312):
        assert _fields({"62": value}) == [("62", "Profil tagihan", value)]
