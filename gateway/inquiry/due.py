"""What a bill owes now, and how it is shown: pure functions of a bill row and a date."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from gateway.domain.penalty import PenaltyPolicy, pbb_penalty
from gateway.payment.results import Amount, BillView


def mask_nik(nik: str | None) -> str | None:
    if not nik:
        return None
    return nik[:6] + "******" + nik[-4:]


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


def amount_due(row: Mapping[str, Any], paid_on: date, policy: PenaltyPolicy) -> Amount:
    """PBB: the principal plus the penalty for the months started since the due date (paid_on is the
    region-local calendar date). BPHTB: the penalty as imported."""
    principal = row["principal"]
    if row["tax"] == "PBB":
        penalty = pbb_penalty(principal, row["due_date"], paid_on, policy)
        return Amount(principal, penalty.amount, principal + penalty.amount, penalty.months_late)
    return Amount(principal, row["penalty"], principal + row["penalty"], 0)


def nothing_due(row: Mapping[str, Any]) -> Amount:
    """How a paid or cancelled bill is shown: its principal, nothing due (spec/iso8583.md field 62)."""
    return Amount(row["principal"], 0, 0, 0)


def not_payable(row: Mapping[str, Any], business_date: date) -> bool:
    """Cancelled, or a BPHTB registration past its valid-until date (payable through that date)."""
    if row["status"] == "cancelled":
        return True
    return row["tax"] == "BPHTB" and row["valid_until"] < business_date
