"""Inquiry: find a bill, compute what is due now, record the quote; and the PBB arrears list.

An inquiry never changes a bill. An approved inquiry by a bank records a quote (spec/domain.md "Quotes").
"""
from __future__ import annotations

from datetime import date, datetime

import asyncpg

from gateway.domain.bills import Tax, other_unpaid_years, pbb_bill_key
from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.domain.nop import in_region, parse_nop, parse_tax_year
from gateway.domain.sspd import parse_registration
from gateway.inquiry.due import amount_due, bill_view, not_payable, nothing_due
from gateway.payment.context import ServiceContext
from gateway.payment.requests import BphtbInquiry, PbbArrears, PbbInquiry
from gateway.payment.results import ArrearsLine, ArrearsResult, InquiryResult, QuoteView
from gateway.payment.unit import run_once
from gateway.store import bills as bill_store
from gateway.store import money

# Arrears and "other unpaid years" look at the current tax year and the five before it.
WINDOW_YEARS = 5


class InquiryService:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def inquire_pbb(self, req: PbbInquiry) -> InquiryResult:
        try:
            nop = parse_nop(req.nop)
            year = parse_tax_year(req.tax_year)
        except FormatError:
            return InquiryResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.bank_refusal(req.bank, Tax.PBB):
            return InquiryResult(rc=refusal)
        if not in_region(nop, self.ctx.region_code):
            return InquiryResult(rc=RC.BILL_NOT_FOUND)
        now = self.ctx.clock.now()
        bill_key = pbb_bill_key(nop, year)

        async def work(conn: asyncpg.Connection) -> InquiryResult:
            row = await bill_store.find(conn, Tax.PBB, bill_key, self.window(now), self.ctx.business_date(now))
            return await self._answer(conn, row, req.bank, now)

        return await run_once(self.ctx, bank=req.bank, key=req.key, operation="pbb-inquiry",
                              result_type=InquiryResult, work=work)

    async def inquire_bphtb(self, req: BphtbInquiry) -> InquiryResult:
        try:
            registration = parse_registration(req.registration_number)
            nop = parse_nop(req.nop) if req.nop not in (None, "") else None
            year = parse_tax_year(req.tax_year) if req.tax_year not in (None, "") else None
        except FormatError:
            return InquiryResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.bank_refusal(req.bank, Tax.BPHTB):
            return InquiryResult(rc=refusal)
        now = self.ctx.clock.now()

        async def work(conn: asyncpg.Connection) -> InquiryResult:
            row = await bill_store.find(conn, Tax.BPHTB, registration, self.window(now),
                                        self.ctx.business_date(now))
            if row is not None and not bphtb_matches(row, nop, year, self.ctx.region_code):
                row = None
            return await self._answer(conn, row, req.bank, now)

        return await run_once(self.ctx, bank=req.bank, key=req.key, operation="bphtb-inquiry",
                              result_type=InquiryResult, work=work)

    async def _answer(self, conn: asyncpg.Connection, row: asyncpg.Record | None, bank: str | None,
                      now: datetime) -> InquiryResult:
        business_date = self.ctx.business_date(now)
        if row is not None and row["date_state"] in ("closing", "closed"):
            # New financial messages of a date being closed get 90 (spec/domain.md "Business day").
            return InquiryResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date)
        if row is None:
            return InquiryResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)
        view = bill_view(row, self.ctx.region_name)
        if row["status"] == "paid":
            ntpd = row["active_ntpd"] if bank is not None and row["active_bank"] == bank else None
            return InquiryResult(rc=RC.ALREADY_PAID, business_date=business_date, bill=view,
                                 amount=nothing_due(row), ntpd=ntpd)
        if not_payable(row, business_date):
            return InquiryResult(rc=RC.NOT_PAYABLE, business_date=business_date, bill=view)
        due = amount_due(row, self.ctx.local_date(now), self.ctx.policy)
        others = other_unpaid_years(business_date.year, row["tax_year"], row["unpaid_years"] or ())
        quote = None
        if bank is not None:
            expires_at = now + self.ctx.quote_ttl
            await money.record_quote(conn, row["id"], bank, due.principal, due.penalty, due.months_late,
                                     now, expires_at)
            quote = QuoteView(total=due.total, expires_at=expires_at)
        return InquiryResult(rc=RC.APPROVED, business_date=business_date, bill=view, amount=due,
                             other_unpaid_years=others, quote=quote)

    def window(self, now: datetime) -> tuple[int, int]:
        return tax_year_window(self.ctx.business_date(now))

    async def arrears_pbb(self, req: PbbArrears) -> ArrearsResult:
        try:
            nop = parse_nop(req.nop)
        except FormatError:
            return ArrearsResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.bank_refusal(req.bank, Tax.PBB):
            return ArrearsResult(rc=refusal)
        if not in_region(nop, self.ctx.region_code):
            return ArrearsResult(rc=RC.BILL_NOT_FOUND)
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)
        paid_on = self.ctx.local_date(now)

        async def work(conn: asyncpg.Connection) -> ArrearsResult:
            rows = await bill_store.pbb_bills_of_nop(conn, nop, *tax_year_window(business_date))
            if not rows and not await bill_store.nop_has_bills(conn, nop):
                return ArrearsResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)
            lines = tuple(arrears_line(row, paid_on, self.ctx) for row in rows)
            total = sum(line.amount.total for line in lines if line.bill.status == "unpaid")
            return ArrearsResult(rc=RC.APPROVED, business_date=business_date, nop=nop, bills=lines,
                                 total_due=total)

        return await run_once(self.ctx, bank=req.bank, key=None, operation="pbb-arrears",
                              result_type=ArrearsResult, work=work)


def tax_year_window(business_date: date) -> tuple[int, int]:
    """The current tax year (of the business date) and the five before it."""
    return business_date.year - WINDOW_YEARS, business_date.year


def arrears_line(row: asyncpg.Record, paid_on: date, ctx: ServiceContext) -> ArrearsLine:
    view = bill_view(row, ctx.region_name)
    if row["status"] == "unpaid":
        return ArrearsLine(view, amount_due(row, paid_on, ctx.policy))
    return ArrearsLine(view, nothing_due(row))


def bphtb_matches(row: asyncpg.Record, nop: str | None, year: int | None, region_code: str) -> bool:
    """The optional NOP and tax year of a BPHTB request must agree with the registration (else RC 14)."""
    if nop is not None and (nop != row["nop"] or not in_region(nop, region_code)):
        return False
    return year is None or year == row["tax_year"]
