"""The service facade the channels call: inquiry, arrears, payment, reversal (above both use-case packages,
so that neither imports the other)."""
from __future__ import annotations

from gateway.inquiry.service import InquiryService
from gateway.payment.posting import PaymentService
from gateway.payment.reversal import ReversalService
from gateway.service.context import ServiceContext
from gateway.service.requests import BphtbInquiry, BphtbPayment, PbbArrears, PbbInquiry, PbbPayment, Reversal
from gateway.service.results import ArrearsResult, InquiryResult, PaymentResult, ReversalResult


class Engine:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx
        self._inquiry = InquiryService(ctx)
        self._payment = PaymentService(ctx)
        self._reversal = ReversalService(ctx)

    async def inquire_pbb(self, req: PbbInquiry) -> InquiryResult:
        return await self._inquiry.inquire_pbb(req)

    async def inquire_bphtb(self, req: BphtbInquiry) -> InquiryResult:
        return await self._inquiry.inquire_bphtb(req)

    async def arrears_pbb(self, req: PbbArrears) -> ArrearsResult:
        return await self._inquiry.arrears_pbb(req)

    async def pay_pbb(self, req: PbbPayment) -> PaymentResult:
        return await self._payment.pay_pbb(req)

    async def pay_bphtb(self, req: BphtbPayment) -> PaymentResult:
        return await self._payment.pay_bphtb(req)

    async def reverse(self, req: Reversal) -> ReversalResult:
        return await self._reversal.reverse(req)
