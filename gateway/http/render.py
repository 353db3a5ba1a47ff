"""Service results as the JSON bodies of spec/http-api.md."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.assessment import Amount
from gateway.domain.codes import message
from gateway.domain.nop import display_nop
from gateway.domain.proof import format_code
from gateway.service.results import ArrearsResult, BillView, InquiryResult, PaymentResult, ReversalResult


def bill_json(bill: BillView) -> dict[str, Any]:
    if bill.tax == "BPHTB":
        return {"tax": "BPHTB", "registration_number": bill.registration_number, "nop": bill.nop,
                "nop_display": display_nop(bill.nop), "tax_year": bill.tax_year,
                "taxpayer_name": bill.taxpayer_name, "nik_masked": bill.nik_masked,
                "object_address": bill.object_address, "kelurahan": bill.kelurahan, "kecamatan": bill.kecamatan,
                "region": bill.region, "acquisition_type": bill.acquisition_type,
                "acquisition_value": bill.acquisition_value, "land_area": bill.land_area,
                "building_area": bill.building_area, "ppat_name": bill.ppat_name,
                "valid_until": bill.valid_until.isoformat() if bill.valid_until else None, "status": bill.status}
    return {"tax": "PBB", "nop": bill.nop, "nop_display": display_nop(bill.nop), "tax_year": bill.tax_year,
            "taxpayer_name": bill.taxpayer_name, "object_address": bill.object_address,
            "kelurahan": bill.kelurahan, "kecamatan": bill.kecamatan, "region": bill.region,
            "land_area": bill.land_area, "building_area": bill.building_area,
            "due_date": bill.due_date.isoformat() if bill.due_date else None, "status": bill.status}


def amount_json(amount: Amount, tax: str, *, months: bool = True) -> dict[str, Any]:
    """``principal`` and ``penalty`` to pay (or paid) and their total, then the gross amounts and what a relief
    program took off them (spec/domain.md "Relief programs"; with none: the gross amounts, zeros, null)."""
    out: dict[str, Any] = {"principal": amount.principal, "penalty": amount.penalty, "total": amount.total}
    if tax == "PBB" and months:
        out["months_late"] = amount.months_late
    relief = amount.relief
    out.update(principal_gross=amount.principal_gross, discount=amount.discount, penalty_gross=amount.penalty_gross,
               penalty_waived=amount.penalty_waived,
               relief={"id": relief.id, "name": relief.name, "decree": relief.decree} if relief else None)
    return out


def _head(rc: str, business_date) -> dict[str, Any]:
    out: dict[str, Any] = {"response_code": str(rc), "message": message(rc)}
    if business_date is not None:
        out["business_date"] = business_date.isoformat()
    return out


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def inquiry_json(result: InquiryResult, tz: ZoneInfo) -> dict[str, Any]:
    out = _head(result.rc, result.business_date)
    if result.bill is not None and result.rc in ("00", "88", "33"):
        out["bill"] = bill_json(result.bill)
    if result.amount is not None and result.bill is not None:
        out["amount"] = amount_json(result.amount, result.bill.tax)
    if result.rc == "00":
        out["other_unpaid_years"] = list(result.other_unpaid_years)
        if result.quote is not None:
            out["quote"] = {"total": result.quote.total, "expires_at": local_time(result.quote.expires_at, tz)}
    if result.ntpd:
        out["ntpd"] = result.ntpd
    return out


def arrears_json(result: ArrearsResult) -> dict[str, Any]:
    out = _head(result.rc, result.business_date)
    if result.rc == "00":
        out["nop"] = result.nop
        out["bills"] = [{"bill": bill_json(line.bill), "amount": amount_json(line.amount, "PBB")}
                        for line in result.bills]
        out["total_due"] = result.total_due
    return out


def payment_json(result: PaymentResult) -> dict[str, Any]:
    out = _head(result.rc, result.business_date)
    if result.ntpd:
        out["ntpd"] = result.ntpd
    if result.rc == "00":
        assert result.bill is not None and result.amount is not None  # an approved payment names both
        if result.validation_code:
            out["validation_code"] = format_code(result.validation_code)
        out["bill"] = bill_json(result.bill)
        out["amount"] = amount_json(result.amount, result.bill.tax, months=False)
        if result.proof is not None:
            out["proof"] = result.proof
            out["signature"] = result.signature
            out["kid"] = result.kid
        out["receipt_url"] = f"/v1/payments/{result.ntpd}/receipt.pdf"
    elif result.bill is not None and result.rc in ("88", "33", "13"):
        out["bill"] = bill_json(result.bill)
        if result.rc == "88" and result.amount is not None:
            # As for an RC 88 inquiry: the bill's principal, nothing due.
            out["amount"] = amount_json(result.amount, result.bill.tax, months=False)
    return out


def reversal_json(result: ReversalResult) -> dict[str, Any]:
    out = _head(result.rc, result.business_date)
    if result.ntpd:
        out["ntpd"] = result.ntpd
    if result.amount is not None and result.rc in ("00", "13", "57"):
        out["amount"] = result.amount
    if result.rc == "00":
        out["already_reversed"] = result.already_reversed
    return out
