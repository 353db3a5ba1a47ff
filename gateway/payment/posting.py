"""Posting a payment: the money invariants of spec/domain.md live here and in the schema.

One payment is one transaction: claim the message key, check the original was not reversed already
(tombstone), hold the business date open, lock the bill, check the amount against what is due now or a
live quote, then append the payment, its active mark and its ledger entries and store the answer.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog

from gateway.domain.assessment import Amount, assess, bphtb_matches, tax_year_window
from gateway.domain.bills import Channel, Tax, other_unpaid_years, pbb_bill_key
from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.domain.money import parse_amount
from gateway.domain.nop import parse_nop, parse_tax_year
from gateway.domain.ntpd import make_ntpd
from gateway.domain.proof import proof_document
from gateway.domain.relief import Relief
from gateway.domain.sspd import parse_registration
from gateway.domain.text import NTB_MAX, TERMINAL_ID_MAX, check_text
from gateway.proofs.signing import SignedProof, sign
from gateway.service.bill_queue import BillBusy
from gateway.service.context import ServiceContext
from gateway.service.requests import BphtbPayment, IsoOrigin, PbbPayment
from gateway.service.results import PaymentResult, to_json
from gateway.service.unit import RETRYABLE, run_direct, run_once
from gateway.service.views import bill_view
from gateway.store import bills as bill_store
from gateway.store import money

log = structlog.get_logger("gateway.payment")


class PaymentService:
    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    async def pay_pbb(self, req: PbbPayment) -> PaymentResult:
        try:
            nop = parse_nop(req.nop)
            year = parse_tax_year(req.tax_year)
            common = _parse_common(req.amount, req.ntb, req.channel, req.terminal_id, req.origin)
        except FormatError:
            return PaymentResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, Tax.PBB, nop):
            return PaymentResult(rc=refusal)
        return await self._post(req, Tax.PBB, pbb_bill_key(nop, year), None, None, *common)

    async def pay_bphtb(self, req: BphtbPayment) -> PaymentResult:
        try:
            registration = parse_registration(req.registration_number)
            nop = parse_nop(req.nop) if req.nop not in (None, "") else None
            year = parse_tax_year(req.tax_year) if req.tax_year not in (None, "") else None
            common = _parse_common(req.amount, req.ntb, req.channel, req.terminal_id, req.origin)
        except FormatError:
            return PaymentResult(rc=RC.FORMAT_ERROR)
        if refusal := self.ctx.refusal(req.bank, Tax.BPHTB):
            return PaymentResult(rc=refusal)
        return await self._post(req, Tax.BPHTB, registration, nop, year, *common)

    async def _post(self, req: PbbPayment | BphtbPayment, tax: Tax, bill_key: str, nop: str | None,
                    year: int | None, amount: int, ntb: str, channel: Channel) -> PaymentResult:
        now = self.ctx.clock.now()
        business_date = self.ctx.business_date(now)
        origin = req.origin
        origin_year = origin.year if origin is not None else None

        async def work(conn: asyncpg.Connection) -> PaymentResult:
            stan, transmitted = (origin.stan, origin.transmitted) if origin is not None else (None, None)
            if origin is not None:
                assert origin_year is not None  # origin.year, taken once above
                await money.lock_origin(conn, req.bank, origin.stan, origin.transmitted, origin_year)
            row = await bill_store.lock_for_payment(conn, tax, bill_key, tax_year_window(business_date),
                                                    business_date, req.bank, stan, transmitted, origin_year)
            if row is None:
                return await self._unknown_bill(conn, req.bank, business_date, stan, transmitted, origin_year)
            if row["tombstoned"]:
                return PaymentResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
            state = row["date_state"] or await bill_store.lock_business_date(conn, business_date)
            if state != "open":
                # Closing, or (with clocks apart between instances) already closed: retry shortly.
                return PaymentResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date)
            if tax == Tax.BPHTB and not bphtb_matches(row, nop, year, self.ctx.region_code):
                return PaymentResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)
            view = bill_view(row, self.ctx.region_name)
            verdict = assess(row, business_date, self.ctx.local_date(now), self.ctx.policy, self.ctx.programs)
            if verdict.rc == RC.ALREADY_PAID:
                active = await bill_store.active_payment(conn, row["id"])
                same_bank = active is not None and active["bank_code"] == req.bank
                return PaymentResult(rc=RC.ALREADY_PAID, business_date=business_date, bill=view, amount=verdict.amount,
                                     ntpd=active["ntpd"] if active is not None and same_bank else None)
            if verdict.rc != RC.APPROVED:
                return PaymentResult(rc=verdict.rc, business_date=business_date, bill=view)
            assert verdict.amount is not None  # RC 00 comes with the amount due (assess)
            charge, quote_id = await self._charge(conn, row, req.bank, amount, verdict.amount, now)
            if charge is None:
                return PaymentResult(rc=RC.INVALID_AMOUNT, business_date=business_date, bill=view)
            ntpd = make_ntpd(business_date, tax, row["serial"])
            payment, result = self._approval(req, tax, row, ntpd, charge, quote_id, business_date, now, ntb,
                                             channel, origin_year)
            await money.insert_payment(conn, payment)
            return result

        async def fast(conn: asyncpg.Connection) -> PaymentResult | None:
            """The usual payment in two statements and no transaction: a read, then the posting in one
            statement under the locks of gw_payment_guard. None: something is not usual (a repeat, a
            reversed original, the date not open, a bill paid or changed since the read, an amount that is
            neither the total due nor a quote, a clash with another row), and the transaction of ``work``
            decides and answers."""
            key = (req.key.channel, req.bank, req.key.key) if req.key is not None else None
            row = await bill_store.read_for_payment(
                conn, tax, bill_key, tax_year_window(business_date), business_date, key, req.bank,
                (origin.stan, origin.transmitted, origin_year) if origin is not None and origin_year else None,
                amount, self.ctx.clock_skew_s(now))
            if row["key_hash"] is not None or row["id"] is None or row["tombstoned"] \
                    or row["date_state"] != "open" or row["status"] != "unpaid":
                return None
            if tax == Tax.BPHTB and not bphtb_matches(row, nop, year, self.ctx.region_code):
                return None
            verdict = assess(row, business_date, self.ctx.local_date(now), self.ctx.policy, self.ctx.programs)
            if verdict.rc != RC.APPROVED or verdict.amount is None:
                return None
            charge, quote_id = verdict.amount, None
            if amount != charge.total:
                if row["quote"] is None:
                    return None
                quote_id, charge = row["quote"][0], quoted(row["quote"])
            ntpd = make_ntpd(business_date, tax, row["serial"])
            payment, result = self._approval(req, tax, row, ntpd, charge, quote_id, business_date, now, ntb,
                                             channel, origin_year)
            log_row = req.answer_log(result) if req.key is not None and req.answer_log is not None else None
            key_values = (req.key.channel, req.key.key, req.key.content_hash(), operation,
                          json.dumps(to_json(result))) if req.key is not None else None
            try:
                posted = await money.post_payment(conn, payment, row["updated_at"], key_values, log_row)
            except (asyncpg.UniqueViolationError, *RETRYABLE):
                return None  # e.g. the original's STAN already taken by another payment: a repeat's story
            return result if posted.payment_id is not None else None

        operation = f"{tax.lower()}-payment"
        deadline = time.monotonic() + self.ctx.request_budget_s
        assert self.ctx.bills is not None  # ServiceContext.__post_init__ makes one
        try:
            async with self.ctx.bills.turn((tax, bill_key), deadline):
                if self.ctx.inquiries is not None:
                    # This process's inquiry of the bill (its quote), or one under this request's key, may
                    # still be on its way to the database: the read below must see it. Half the time left at
                    # most (a few milliseconds as a rule): the payment keeps the rest for its own work.
                    await self.ctx.inquiries.settled(
                        (tax, bill_key), (req.key.channel, req.bank, req.key.key) if req.key is not None else None,
                        (deadline - time.monotonic()) / 2)

                async def fast_work(conn: asyncpg.Connection) -> _Fast:
                    return _Fast(result=await fast(conn))

                done = await run_direct(self.ctx, bank=req.bank, operation=operation, result_type=_Fast,
                                        work=fast_work, deadline=deadline)
                if done.result is not None:
                    return done.result
                if done.rc != _TAKE_SLOW_PATH:
                    return PaymentResult(rc=done.rc)
                return await run_once(self.ctx, bank=req.bank, key=req.key, operation=operation,
                                      result_type=PaymentResult, work=work, answer_log=req.answer_log,
                                      deadline=deadline)
        except BillBusy as exc:
            log.warning("bill busy; answered 91", bill=bill_key, bank=req.bank, reason=str(exc))
            return PaymentResult(rc=RC.HOST_UNAVAILABLE)

    def _approval(self, req: PbbPayment | BphtbPayment, tax: Tax, row: asyncpg.Record, ntpd: str, charge: Amount,
                  quote_id: int | None, business_date: date, now: datetime, ntb: str, channel: Channel,
                  origin_year: int | None) -> tuple[money.NewPayment, PaymentResult]:
        """The payment to append and the bank's answer, proof signed."""
        origin = req.origin
        signed = self._sign(ntpd, row, charge, business_date, now, req.bank, channel, ntb)
        payment = money.NewPayment(
            ntpd=ntpd, bill_id=row["id"], tax=tax, bank=req.bank, channel=channel.value, via=req.via,
            ntb=ntb, terminal_id=req.terminal_id or (origin.terminal_id if origin else ""),
            rrn=origin.rrn if origin else None, stan=origin.stan if origin else None,
            transmitted=origin.transmitted if origin else None,
            transmitted_year=origin_year, principal=charge.principal,
            penalty=charge.penalty, months_late=charge.months_late, quote_id=quote_id,
            business_date=business_date, paid_at=now, proof=signed, discount=charge.discount,
            penalty_waived=charge.penalty_waived, relief=charge.relief,
        )
        others = other_unpaid_years(business_date.year, row["tax_year"], row["unpaid_years"] or ())
        result = PaymentResult(
            rc=RC.APPROVED, business_date=business_date, ntpd=ntpd,
            bill=bill_view(row, self.ctx.region_name, status="paid"), amount=charge, paid_at=now,
            bank=req.bank, channel=channel.value, ntb=ntb, other_unpaid_years=others,
            quote_used=quote_id is not None, proof=signed.document if signed else None,
            signature=signed.signature if signed else None, kid=signed.kid if signed else None,
            validation_code=signed.validation_code if signed else None,
        )
        return payment, result

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
            nop=row["nop"] if bphtb else None, discount=charge.discount, penalty_waived=charge.penalty_waived,
            relief=charge.relief.id if charge.relief is not None else None)
        return sign(document, private_key, kid)

    async def _unknown_bill(self, conn: asyncpg.Connection, bank: str, business_date, stan: str | None,
                            transmitted: str | None, year: int | None) -> PaymentResult:
        """No such bill: still, a reversed original is refused (12) and a closing date answers 90 first."""
        if stan is not None:
            assert transmitted is not None and year is not None  # an ISO origin gives all three
            if await money.tombstone_exists(conn, bank, stan, transmitted, year):
                return PaymentResult(rc=RC.INVALID_TRANSACTION, business_date=business_date)
        if await bill_store.lock_business_date(conn, business_date) != "open":
            return PaymentResult(rc=RC.CUTOFF_IN_PROGRESS, business_date=business_date)
        return PaymentResult(rc=RC.BILL_NOT_FOUND, business_date=business_date)

    async def _charge(self, conn: asyncpg.Connection, row: asyncpg.Record, bank: str, amount: int, due: Amount,
                      now: datetime) -> tuple[Amount | None, int | None]:
        """What the payment is booked as: the total due now, or a live quote of this bank (never less
        than its principal to pay). Anything else is no charge at all (RC 13)."""
        if amount == due.total:
            return due, None
        quote = await money.live_quote(conn, row["id"], bank, amount, row["principal"], self.ctx.clock_skew_s(now))
        if quote is None:
            return None, None
        return quoted(quote), quote["id"]


def quoted(quote: Sequence[Any]) -> Amount:
    """What a quote (its fields in money.QUOTE_COLUMNS' order) books a payment as: its amounts, reductions
    and program, whatever the configuration says now (spec/domain.md "Relief programs")."""
    _, principal, penalty, total, months_late, discount, waived, relief_id, name, decree = tuple(quote)
    return Amount(principal, penalty, total, months_late, discount, waived,
                  Relief(relief_id, name, decree) if relief_id is not None else None)


# What the fast path's run_direct gives back: the answer, or why there is none.
_TAKE_SLOW_PATH = "--"


@dataclass(frozen=True)
class _Fast:
    rc: str = _TAKE_SLOW_PATH  # 91 or 96 from run_direct when the database failed the fast path
    result: PaymentResult | None = None


def _parse_common(amount: str | int, ntb: str, channel: str, terminal_id: str,
                  origin: IsoOrigin | None) -> tuple[int, str, Channel]:
    """Amount, NTB and channel; the free texts the payment stores are checked by the text rules too, so
    that NUL or a control character is RC 30 on both channels, never a database error (96)."""
    value = parse_amount(amount)
    check_text(ntb, "ntb", NTB_MAX)
    if not ntb.isascii():
        raise FormatError("ntb", f"1-{NTB_MAX} ASCII characters required")
    check_text(terminal_id, "terminal_id", TERMINAL_ID_MAX, required=False)
    if origin is not None:
        check_text(origin.terminal_id or "", "terminal_id", TERMINAL_ID_MAX, required=False)
        check_text(origin.rrn or "", "rrn", 12, required=False)
    return value, ntb.strip(), Channel.parse(channel)


__all__ = ["PaymentService", "IsoOrigin"]
