"""Reversal: undo exactly one payment, once, for the bank that made it (spec/domain.md invariants 4, 5).

By NTPD (the JSON channel, or ISO field 47) or by the original's key (ISO field 90). An original that is
unknown is answered RC 00 and remembered as a tombstone, so the payment, if it ever arrives, is refused.
"""
from __future__ import annotations

import time

import asyncpg

from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.domain.money import parse_amount
from gateway.domain.ntpd import parse_ntpd
from gateway.domain.text import REASON_MAX, check_text
from gateway.service.context import ServiceContext
from gateway.service.requests import Reversal
from gateway.service.results import ReversalResult
from gateway.service.unit import run_once
from gateway.store import bills as bill_store
from gateway.store import money


def _same_institution(a: str, b: str) -> bool:
    # Field 90 carries institutions right-justified and zero-filled to 11 digits.
    return a.lstrip("0") == b.lstrip("0")


class ReversalService:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def reverse(self, req: Reversal) -> ReversalResult:
        try:
            amount = parse_amount(req.amount)
            ntpd = parse_ntpd(req.ntpd) if req.ntpd else None
            check_text(req.reason or "", "reason", REASON_MAX, multiline=True, required=False)
        except FormatError:
            return ReversalResult(rc=RC.FORMAT_ERROR)
        if ntpd is None and req.original is None:
            return ReversalResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, req.tax):
            return ReversalResult(rc=refusal)
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)

        async def work(conn: asyncpg.Connection) -> ReversalResult:
            if ntpd is not None:
                payment = await money.payment_by_ntpd(conn, ntpd)
                if payment is None:
                    return ReversalResult(rc=RC.BILL_NOT_FOUND, business_date=business_date, ntpd=ntpd)
            else:
                original = req.original
                assert original is not None
                if not _same_institution(original.acquirer, req.bank):
                    # Only the bank that made a payment may reverse it, or leave a tombstone for it.
                    return ReversalResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
                year = original.year
                await money.lock_origin(conn, req.bank, original.stan, original.transmitted, year)
                payment = await money.payment_by_origin(conn, req.bank, original.stan, original.transmitted, year)
                if payment is None:
                    await money.insert_tombstone(conn, req.bank, original.stan, original.transmitted, year,
                                                 original.forwarding, amount, business_date, now)
                    return ReversalResult(rc=RC.APPROVED, business_date=business_date, amount=amount,
                                          tombstone=True)
            return await self._reverse(conn, req, payment, amount, business_date, now)

        deadline = time.monotonic() + self.ctx.request_budget_s
        if self.ctx.inquiries is not None and req.key is not None:
            # An inquiry under this request's key may still be on its way to the database (a reused key: 94);
            # half the time at most, as for a payment.
            await self.ctx.inquiries.settled(None, (req.key.channel, req.bank, req.key.key),
                                             self.ctx.request_budget_s / 2)
        return await run_once(self.ctx, bank=req.bank, key=req.key, operation="reversal",
                              result_type=ReversalResult, work=work, answer_log=req.answer_log, deadline=deadline)

    async def _reverse(self, conn, req, payment, amount, business_date, now) -> ReversalResult:
        base = dict(business_date=business_date, ntpd=payment["ntpd"], amount=payment["total"],
                    payment_business_date=payment["business_date"])
        if payment["bank_code"] != req.bank:
            return ReversalResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
        if req.tax is not None and payment["tax"].lower() != req.tax.lower():
            return ReversalResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
        if amount != payment["total"]:
            return ReversalResult(rc=RC.INVALID_AMOUNT, **base)
        state = await bill_store.lock_business_date(conn, payment["business_date"])
        await bill_store.lock_by_id(conn, payment["bill_id"])
        # Re-read under the bill's lock: a concurrent reversal of the same payment may have committed.
        if await money.reversal_of(conn, payment["id"]) is not None:
            return ReversalResult(rc=RC.APPROVED, already_reversed=True, **base)
        if state == "closed":
            return ReversalResult(rc=RC.REVERSAL_NOT_PERMITTED, **base)
        if state == "closing":
            return ReversalResult(rc=RC.CUTOFF_IN_PROGRESS, **base)
        await money.insert_reversal(conn, payment, via=req.via, reason=req.reason,
                                    received_business_date=business_date, now=now)
        return ReversalResult(rc=RC.APPROVED, **base)
