"""A bill row as the results show it (``BillView``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain.assessment import Amount, mask_nik
from gateway.domain.relief import Relief
from gateway.service.results import BillView


def bill_view(row: Mapping[str, Any], region_name: str, status: str | None = None) -> BillView:
    bphtb = row["tax"] == "BPHTB"
    return BillView(
        tax=row["tax"],
        bill_key=row["bill_key"],
        nop=row["nop"],
        tax_year=row["tax_year"],
        taxpayer_name=row["taxpayer_name"],
        object_address=row["object_address"],
        kelurahan=row["kelurahan"],
        kecamatan=row["kecamatan"],
        region=region_name,
        land_area=row["land_area"],
        building_area=row["building_area"],
        status=status or row["status"],
        principal=row["principal"],
        due_date=row["due_date"],
        registration_number=row["bill_key"] if bphtb else None,
        nik_masked=mask_nik(row["nik"]) if bphtb else None,
        acquisition_type=row["acquisition_type"] if bphtb else None,
        acquisition_value=row["acquisition_value"] if bphtb else None,
        ppat_name=row["ppat_name"] if bphtb else None,
        valid_until=row["valid_until"] if bphtb else None,
    )


def paid_amount(row: Mapping[str, Any]) -> Amount:
    """A payment row's amounts as paid, with the reductions and the program it was booked under."""
    relief = Relief(row["relief_id"], row["relief_name"], row["relief_decree"]) if row["relief_id"] else None
    return Amount(row["principal"], row["penalty"], row["total"], 0, row["discount"], row["penalty_waived"], relief)


def relief_of(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, decree) of the program a payment row was reduced by, for its receipt; None without one."""
    return (row["relief_name"], row["relief_decree"]) if row["relief_id"] else None
