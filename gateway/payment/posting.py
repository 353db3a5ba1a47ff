"""Posting a payment: the money invariants of spec/domain.md live here and in the schema.

One payment is one transaction: claim the message key, check the original was not reversed already
(tombstone), hold the business date open, lock the bill, check the amount against what is due now or a
live quote, then append the payment, its active mark and its ledger entries and store the answer.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

from gateway.domain.bills import Channel, Tax, other_unpaid_years, pbb_bill_key
from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.domain.money import parse_amount
from gateway.domain.nop import in_region, parse_nop, parse_tax_year
from gateway.domain.ntpd import make_ntpd
from gateway.domain.proof import proof_document
from gateway.domain.sspd import parse_registration
from gateway.proofs.signing import SignedProof, sign
from gateway.inquiry.due import amount_due, bill_view, not_payable, nothing_due
from gateway.inquiry.service import bphtb_matches, tax_year_window
from gateway.payment.context import ServiceContext
from gateway.payment.requests import BphtbPayment, IsoOrigin, PbbPayment
from gateway.payment.results import Amount, PaymentResult
from gateway.payment.unit import run_once
from gateway.store import bills as bill_store
from gateway.store import money

NTB_MAX = 32


class PaymentService:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def pay_pbb(self, req: PbbPayment) -> PaymentResult:
        try:
            nop = parse_nop(req.nop)
            year = parse_tax_year(req.tax_year)
            common = _parse_common(req.amount, req.ntb, req.channel)
        except FormatError:
            return PaymentResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.bank_refusal(req.bank, Tax.PBB):
            return PaymentResult(rc=refusal)
        if not in_region(nop, self.ctx.region_code):
            return PaymentResult(rc=RC.BILL_NOT_FOUND)
        return await self._post(req, Tax.PBB, pbb_bill_key(nop, year), None, None, *common)

    async def pay_bphtb(self, req: BphtbPayment) -> PaymentResult:
        try:
            registration = parse_registration(req.registration_number)
            nop = parse_nop(req.nop) if req.nop not in (None, "") else None
            year = parse_tax_year(req.tax_year) if req.tax_year not in (None, "") else None
            common = _parse_common(req.amount, req.ntb, req.channel)
        except FormatError:
            return PaymentResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.bank_refusal(req.bank, Tax.BPHTB):
            return PaymentResult(rc=refusal)
        return await self._post(req, Tax.BPHTB, registration, nop, year, *common)

    async def _post(self, req: PbbPayment | BphtbPayment, tax: Tax, bill_key: str, nop: str | None,
                    year: int | None, amount: int, ntb: str, channel: Channel) -> PaymentResult:
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)
        origin = req.origin

        async def work(conn: asyncpg.Connection) -> PaymentResult:
            stan, transmitted = (origin.stan, origin.transmitted) if origin is not None else (None, None)
            if origin is not None:
                await money.lock_origin(conn, req.bank, origin.stan, origin.transmitted)
            row = await bill_store.lock_for_payment(conn, tax, bill_key, tax_year_window(business_date),
                                                    business_date, req.bank, stan, transmitted)
            if row is None:
                return await self._unknown_bill(conn, req.bank, business_date, stan, transmitted)
            if row["tombstoned"]:
                return PaymentResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
            state = row["date_state"] or await bill_store.lock_business_date(conn, business_date)
            if state != "open":
                # Closing, or (with clocks apart between instances) already closed: retry shortly.
                return PaymentResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date)
            if tax == Tax.BPHTB and not bphtb_matches(row, nop, year, self.ctx.region_code):
                return PaymentResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)
            view = bill_view(row, self.ctx.region_name)
            if row["status"] == "paid":
                active = await bill_store.active_payment(conn, row["id"])
                same_bank = active is not None and active["bank_code"] == req.bank
                return PaymentResult(rc=RC.ALREADY_PAID, business_date=business_date, bill=view,
                                     amount=nothing_due(row), ntpd=active["ntpd"] if same_bank else None)
            if not_payable(row, business_date):
                return PaymentResult(rc=RC.NOT_PAYABLE, business_date=business_date, bill=view)
            charge, quote_id = await self._charge(conn, row, req.bank, amount, now)
            if charge is None:
                return PaymentResult(rc=RC.INVALID_AMOUNT, business_date=business_date, bill=view)
            ntpd = make_ntpd(business_date, tax, row["serial"])
            signed = self._sign(ntpd, row, charge, business_date, now, req.bank, channel, ntb)
            await money.insert_payment(conn, money.NewPayment(
                ntpd=ntpd, bill_id=row["id"], tax=tax, bank=req.bank, channel=channel.value, via=req.via,
                ntb=ntb, terminal_id=req.terminal_id or (origin.terminal_id if origin else ""),
                rrn=origin.rrn if origin else None, stan=origin.stan if origin else None,
                transmitted=origin.transmitted if origin else None, principal=charge.principal,
                penalty=charge.penalty, months_late=charge.months_late, quote_id=quote_id,
                business_date=business_date, paid_at=now, proof=signed,
            ))
            others = other_unpaid_years(business_date.year, row["tax_year"], row["unpaid_years"] or ())
            return PaymentResult(
                rc=RC.APPROVED, business_date=business_date, ntpd=ntpd,
                bill=bill_view(row, self.ctx.region_name, status="paid"), amount=charge, paid_at=now,
                bank=req.bank, channel=channel.value, ntb=ntb, other_unpaid_years=others,
                quote_used=quote_id is not None, proof=signed.document if signed else None,
                signature=signed.signature if signed else None, kid=signed.kid if signed else None,
                validation_code=signed.validation_code if signed else None,
            )

        return await run_once(self.ctx, bank=req.bank, key=req.key, operation=f"{tax.lower()}-payment",
                              result_type=PaymentResult, work=work)

    def _sign(self, ntpd: str, row, charge: Amount, business_date, now, bank: str, channel: Channel,
              ntb: str) -> SignedProof | None:
        """The payment's proof, signed with the current key (spec/domain.md "Payment proof")."""
        if self.ctx.keys is None:
            return None
        kid, private_key = self.ctx.keys.current()
        bphtb = row["tax"] == Tax.BPHTB
        document = proof_document(
            ntpd=ntpd, tax=row["tax"], bill=row["bill_key"] if bphtb else row["nop"], tax_year=row["tax_year"],
            taxpayer=row["taxpayer_name"], principal=charge.principal, penalty=charge.penalty, total=charge.total,
            business_date=business_date, paid_at=now.astimezone(self.ctx.config.region.tz), bank=bank,
            channel=channel.value, ntb=ntb, region=self.ctx.region_code, kid=kid,
            nop=row["nop"] if bphtb else None)
        return sign(document, private_key, kid)

    async def _unknown_bill(self, conn: asyncpg.Connection, bank: str, business_date, stan: str | None,
                            transmitted: str | None) -> PaymentResult:
        """No such bill: still, a reversed original is refused (12) and a closing date answers 90 first."""
        if stan is not None and await money.tombstone_exists(conn, bank, stan, transmitted):
            return PaymentResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
        if await bill_store.lock_business_date(conn, business_date) != "open":
            return PaymentResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date)
        return PaymentResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)

    async def _charge(self, conn: asyncpg.Connection, row: asyncpg.Record, bank: str, amount: int,
                      now: datetime) -> tuple[Amount | None, int | None]:
        """What the payment is booked as: the total due now, or a live quote of this bank (never less
        than the principal). Anything else is no charge at all (RC 13)."""
        due = amount_due(row, self.ctx.local_date(now), self.ctx.policy)
        if amount == due.total:
            return due, None
        if amount < row["principal"]:
            return None, None
        quote = await money.live_quote(conn, row["id"], bank, amount, row["principal"], now)
        if quote is None:
            return None, None
        return Amount(quote["principal"], quote["penalty"], quote["total"], quote["months_late"]), quote["id"]


def _parse_common(amount: str | int, ntb: str, channel: str) -> tuple[int, str, Channel]:
    value = parse_amount(amount)
    if not isinstance(ntb, str) or not ntb.strip() or len(ntb) > NTB_MAX or not ntb.isascii():
        raise FormatError("ntb", f"1-{NTB_MAX} ASCII characters required")
    return value, ntb.strip(), Channel.parse(channel)


__all__ = ["PaymentService", "IsoOrigin"]
