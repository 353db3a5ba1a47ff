"""Inquiry: find a bill, compute what is due now, record the quote; and the PBB arrears list.

An inquiry never changes a bill. An approved inquiry by a bank records a quote (spec/domain.md "Quotes").
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta

import asyncpg

from gateway.domain.assessment import amount_due, assess, bphtb_matches, nothing_due, tax_year_window
from gateway.domain.bills import Tax, other_unpaid_years, pbb_bill_key
from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.domain.nop import parse_nop, parse_tax_year
from gateway.domain.sspd import parse_registration
from gateway.service.context import ServiceContext
from gateway.service.requests import BphtbInquiry, MessageKey, PbbArrears, PbbInquiry
from gateway.service.results import ArrearsLine, ArrearsResult, InquiryResult, QuoteView, to_json
from gateway.service.unit import TRANSIENT, answer_repeat, run_direct, run_once
from gateway.service.views import bill_view
from gateway.store import bills as bill_store
from gateway.store import keys, money


class InquiryService:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def inquire_pbb(self, req: PbbInquiry) -> InquiryResult:
        try:
            nop = parse_nop(req.nop)
            year = parse_tax_year(req.tax_year)
        except FormatError:
            return InquiryResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, Tax.PBB, nop):
            return InquiryResult(rc=refusal)
        return await self._inquire(req.bank, req.key, Tax.PBB, pbb_bill_key(nop, year), "pbb-inquiry")

    async def inquire_bphtb(self, req: BphtbInquiry) -> InquiryResult:
        try:
            registration = parse_registration(req.registration_number)
            nop = parse_nop(req.nop) if req.nop not in (None, "") else None
            year = parse_tax_year(req.tax_year) if req.tax_year not in (None, "") else None
        except FormatError:
            return InquiryResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, Tax.BPHTB):
            return InquiryResult(rc=refusal)

        def matches(row: asyncpg.Record) -> bool:
            return bphtb_matches(row, nop, year, self.ctx.region_code)

        return await self._inquire(req.bank, req.key, Tax.BPHTB, registration, "bphtb-inquiry", matches)

    async def _inquire(self, bank: str | None, key: MessageKey | None, tax: Tax, bill_key: str, operation: str,
                       matches: Callable[[asyncpg.Record], bool] | None = None) -> InquiryResult:
        """One read (the bill, the database's clock, an answer already stored under the key), the answer
        worked out, then its quote and key written without waiting for a synchronous commit (spec/domain.md
        "Quotes"): no transaction, nothing durable on the inquiry's path. With the context's recorder
        (``gateway serve``) they are written behind the answer, and the read is the only round trip."""
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)
        keyed = key if bank is not None else None
        recorder = self.ctx.inquiries
        if keyed is not None and recorder is not None and bank is not None \
                and (pending := recorder.pending_answer(keyed.channel, bank, keyed.key)) is not None:
            return answer_repeat(pending, keyed, operation, InquiryResult)

        async def work(conn: asyncpg.Connection) -> InquiryResult:
            row = await bill_store.read_keyed(conn, tax, bill_key, tax_year_window(business_date), business_date,
                                              (keyed.channel, bank, keyed.key) if keyed and bank else None)
            if keyed is not None and (stored := keys.stored_answer(row["key_hash"], row["key_operation"],
                                                                    row["key_answer"])) is not None:
                return answer_repeat(stored, keyed, operation, InquiryResult)
            bill = row if row["id"] is not None and (matches is None or matches(row)) else None
            result, quote = self._answer(bill, bank, now, row["db_now"])
            if result.rc in TRANSIENT or bank is None or (quote is None and keyed is None):
                return result
            key_values = (keyed.channel, keyed.key, keyed.content_hash(), operation,
                          json.dumps(to_json(result))) if keyed is not None else None
            if recorder is not None:
                earlier = recorder.add(bank, (tax, bill_key), quote, key_values)
                if earlier is None:
                    return result
                # The same key answered a moment ago on this process, its write still pending: a repeat.
                assert keyed is not None, "only a keyed inquiry can be pending under its key"
                return answer_repeat(earlier, keyed, operation, InquiryResult)
            if await money.record_inquiry(conn, bank, quote, key_values):
                return result
            # The same key's answer was stored between the read and this write: a repeat after all.
            assert keyed is not None
            stored = await keys.find(conn, keyed.channel, bank, keyed.key)
            assert stored is not None, "a key that conflicted holds an answer"
            return answer_repeat(stored, keyed, operation, InquiryResult)

        return await run_direct(self.ctx, bank=bank, operation=operation, result_type=InquiryResult, work=work)

    def _answer(self, row: asyncpg.Record | None, bank: str | None, now: datetime,
                db_now: datetime) -> tuple[InquiryResult, money.NewQuote | None]:
        business_date = self.ctx.business_date(now)
        if row is not None and row["date_state"] in ("closing", "closed"):
            # New financial messages of a date being closed get 90 (spec/domain.md "Business day").
            return InquiryResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date), None
        if row is None:
            return InquiryResult(rc=RC.BILL_NOT_FOUND, business_date=business_date), None
        view = bill_view(row, self.ctx.region_name)
        verdict = assess(row, business_date, self.ctx.local_date(now), self.ctx.policy, self.ctx.programs)
        if verdict.rc == RC.ALREADY_PAID:
            ntpd = row["active_ntpd"] if bank is not None and row["active_bank"] == bank else None
            return InquiryResult(rc=RC.ALREADY_PAID, business_date=business_date, bill=view,
                                 amount=verdict.amount, ntpd=ntpd), None
        if verdict.rc != RC.APPROVED:
            return InquiryResult(rc=verdict.rc, business_date=business_date, bill=view), None
        due = verdict.amount
        assert due is not None  # RC 00 comes with the amount due (assess)
        others = other_unpaid_years(business_date.year, row["tax_year"], row["unpaid_years"] or ())
        quote = None
        if bank is not None:
            # The quote's lifetime runs on the database's clock, the one every instance shares, shifted by
            # the gateway's offset (a [testing] clock).
            created = db_now + timedelta(seconds=self.ctx.clock_skew_s(now))
            quote = money.NewQuote(bill_id=row["id"], principal=due.principal, penalty=due.penalty,
                                   months_late=due.months_late, created_at=created,
                                   expires_at=created + self.ctx.quote_ttl, discount=due.discount,
                                   penalty_waived=due.penalty_waived, relief=due.relief)
        return InquiryResult(rc=RC.APPROVED, business_date=business_date, bill=view, amount=due,
                             other_unpaid_years=others,
                             quote=QuoteView(total=due.total, expires_at=quote.expires_at) if quote else None), quote

    def window(self, now: datetime) -> tuple[int, int]:
        return tax_year_window(self.ctx.business_date(now))

    async def arrears_pbb(self, req: PbbArrears) -> ArrearsResult:
        try:
            nop = parse_nop(req.nop)
        except FormatError:
            return ArrearsResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, Tax.PBB, nop):
            return ArrearsResult(rc=refusal)
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)
        paid_on = self.ctx.local_date(now)

        async def work(conn: asyncpg.Connection) -> ArrearsResult:
            rows = await bill_store.pbb_bills_of_nop(conn, nop, *tax_year_window(business_date))
            if not rows and not await bill_store.nop_has_bills(conn, nop):
                return ArrearsResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)
            lines = tuple(arrears_line(row, paid_on, business_date, self.ctx) for row in rows)
            total = sum(line.amount.total for line in lines if line.bill.status == "unpaid")
            return ArrearsResult(rc=RC.APPROVED, business_date=business_date, nop=nop, bills=lines,
                                 total_due=total)

        return await run_once(self.ctx, bank=req.bank, key=None, operation="pbb-arrears",
                              result_type=ArrearsResult, work=work)


def arrears_line(row: asyncpg.Record, paid_on: date, business_date: date, ctx: ServiceContext) -> ArrearsLine:
    view = bill_view(row, ctx.region_name)
    if row["status"] == "unpaid":
        return ArrearsLine(view, amount_due(row, paid_on, ctx.policy, business_date, ctx.programs))
    return ArrearsLine(view, nothing_due(row))

