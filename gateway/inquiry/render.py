"""Plain-text rendering of service results for the command line."""
from __future__ import annotations

from gateway.domain.codes import message
from gateway.domain.nop import display_nop
from gateway.service.results import InquiryResult


def rupiah(amount: int) -> str:
    return "Rp" + f"{amount:,}".replace(",", ".")


def render_inquiry(result: InquiryResult) -> str:
    lines = [f"response code   {result.rc} ({message(result.rc)})"]
    if result.business_date:
        lines.append(f"business date   {result.business_date.isoformat()}")
    bill = result.bill
    if bill is not None:
        if bill.registration_number:
            lines.append(f"registration    {bill.registration_number}")
        lines += [
            f"tax             {bill.tax}",
            f"NOP             {display_nop(bill.nop)}",
            f"tax year        {bill.tax_year}",
            f"taxpayer        {bill.taxpayer_name}",
            f"address         {bill.object_address}, {bill.kelurahan}, {bill.kecamatan}, {bill.region}",
            f"land/building   {bill.land_area} m2 / {bill.building_area} m2",
            f"status          {bill.status}",
        ]
        if bill.due_date:
            lines.append(f"due date        {bill.due_date.isoformat()}")
        if bill.valid_until:
            lines.append(f"valid until     {bill.valid_until.isoformat()}")
    if result.amount is not None:
        a = result.amount
        lines += [
            f"principal       {rupiah(a.principal)}",
            f"penalty         {rupiah(a.penalty)} ({a.months_late} month(s) late)",
            f"total due       {rupiah(a.total)}",
        ]
    if result.other_unpaid_years:
        lines.append("other unpaid    " + ", ".join(str(y) for y in result.other_unpaid_years))
    if result.quote is not None:
        lines.append(f"quote valid to  {result.quote.expires_at.isoformat()}")
    if result.ntpd:
        lines.append(f"NTPD            {result.ntpd}")
    return "\n".join(lines)
