"""ISO 8583 fields ↔ service requests and results (spec/iso8583.md "Messages", "Fields", "Keys").

This module decides what a decoded request means and what its answer carries. It does no I/O of its own:
the connection hands it decoded fields and the connection's state, it calls the engine and returns the
answer's fields.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import structlog

from gateway.config import BankConfig
from gateway.domain.bills import Channel
from gateway.domain.codes import RC
from gateway.domain.errors import FormatError
from gateway.engine import Engine
from gateway.iso8583.profiles import bphtb_profile, parse_original_data, pbb_profile
from gateway.service.requests import (
    BphtbInquiry,
    BphtbPayment,
    IsoOrigin,
    MessageKey,
    OriginalRef,
    PbbInquiry,
    PbbPayment,
    Reversal,
)
from gateway.service.results import InquiryResult, PaymentResult, ReversalResult
from gateway.service.unit import answer_written

log = structlog.get_logger("gateway.iso8583")

PBB_INQUIRY, PBB_PAYMENT, BPHTB_INQUIRY, BPHTB_PAYMENT = "341019", "541019", "341066", "541066"
PROCESSING = {
    PBB_INQUIRY: ("pbb", "inquiry"),
    PBB_PAYMENT: ("pbb", "payment"),
    BPHTB_INQUIRY: ("bphtb", "inquiry"),
    BPHTB_PAYMENT: ("bphtb", "payment"),
}

# Fields a 0210/0410/0810 echoes unchanged from its request (the table's E column).
ECHO_0210 = ("2", "3", "7", "11", "12", "13", "18", "32", "33", "37", "41", "42", "43", "48", "49", "61")
ECHO_0410 = ECHO_0210 + ("4", "47", "90")
ECHO_0810 = ("7", "11", "32", "70")

# Mandatory request fields (the table's M column).
MANDATORY_0200 = ("3", "7", "11", "12", "13", "18", "32", "37", "41", "49", "61")
MANDATORY_PAYMENT = MANDATORY_0200 + ("4", "48")
MANDATORY_0400 = ("3", "4", "7", "11", "12", "13", "18", "32", "37", "41", "49", "61", "90")
MANDATORY_0800 = ("7", "11", "32", "70")

ZERO_AMOUNT = "0" * 12
CURRENCY_IDR = "360"


@dataclass
class ConnectionState:
    """What a connection knows about its bank and its network-management state."""

    bank: BankConfig
    signed_on: bool = False
    signed_off: bool = False
    # The connection's message-log row of an answer (Outcome -> LogRow), for approvals written with the
    # payment; None: no database log.
    answer_row: Callable[["Outcome"], Any] | None = None


@dataclass
class Outcome:
    """An answer's fields and what the message log should know about the exchange."""

    fields: dict[str, str]
    rc: str
    bill_id: str | None = None
    ntpd: str | None = None
    message_key: str | None = None
    event: str = "message"
    detail: str | None = None
    # The answer's log row was written by the payment's own transaction: the connection must not queue it.
    logged: bool = False


class Router:
    def __init__(self, engine: Engine):
        self.engine = engine

    def business_date(self) -> date:
        return self.engine.ctx.business_date(self.engine.ctx.clock.now())

    async def handle(self, request: dict[str, str], state: ConnectionState) -> Outcome:
        mti = request["t"]
        if not state.bank.enabled:
            # spec/iso8583.md: a disabled bank's every request is answered RC 05 (network management,
            # unknown MTIs and malformed requests included); nothing else is looked at.
            return self.refuse(request, RC.DO_NOT_HONOUR, detail="bank disabled")
        if mti == "0800":
            return self._network(request, state)
        if mti == "0200":
            return await self._financial(request, state)
        if mti in ("0400", "0401"):
            return await self._reversal(request, state)
        return self.refuse(request, RC.INVALID_TRANSACTION, detail=f"unsupported MTI {mti}")

    # -- answers -----------------------------------------------------------------------------------

    def answer(self, request: dict[str, str], rc: str, business_date: date | None = None) -> dict[str, str]:
        mti = request.get("t", "")
        if mti == "0800":
            fields = {k: request[k] for k in ECHO_0810 if k in request}
        else:
            echo = ECHO_0410 if mti in ("0400", "0401") else ECHO_0210
            fields = {k: request[k] for k in echo if k in request}
            day = business_date or self.business_date()
            fields["15"] = day.strftime("%m%d")
        fields["t"] = response_mti(mti)
        fields["39"] = str(rc)
        return fields

    def refuse(self, request: dict[str, str], rc: RC, *, detail: str = "", event: str = "message") -> Outcome:
        fields = self.answer(request, rc)
        if request.get("t") == "0200" and "4" not in fields:
            fields["4"] = request.get("4", ZERO_AMOUNT) if is_digits(request.get("4", ""), 12) else ZERO_AMOUNT
        return Outcome(fields=fields, rc=rc, event=event, detail=detail or None)

    # -- network management ------------------------------------------------------------------------

    def _network(self, request: dict[str, str], state: ConnectionState) -> Outcome:
        if missing := first_missing(request, MANDATORY_0800):
            return self.refuse(request, RC.FORMAT_ERROR, detail=f"field {missing} missing or malformed")
        if not same_bank(request["32"], state.bank.code):
            return self.refuse(request, RC.DO_NOT_HONOUR, detail="field 32 is not this connection's bank")
        code = request["70"]
        if code == "001":
            state.signed_on, state.signed_off = True, False
        elif code == "002":
            state.signed_on, state.signed_off = False, True
        elif code not in ("301", "201"):
            return self.refuse(request, RC.INVALID_TRANSACTION, detail=f"unknown network code {code}")
        # A cut-over (201) is recorded by the message log row of this exchange (event "cutover").
        return Outcome(fields=self.answer(request, RC.APPROVED), rc=RC.APPROVED,
                       event={"001": "sign_on", "002": "sign_off", "201": "cutover"}.get(code, "message"))

    def _bank_refusal(self, request: dict[str, str], state: ConnectionState) -> str | None:
        if not same_bank(request["32"], state.bank.code):
            return "field 32 is not this connection's bank"
        if not state.bank.enabled:
            return "bank disabled"
        if state.signed_off:
            return "signed off"
        if state.bank.require_sign_on and not state.signed_on:
            return "sign-on required"
        return None

    # -- 0200 --------------------------------------------------------------------------------------

    async def _financial(self, request: dict[str, str], state: ConnectionState) -> Outcome:
        code = request.get("3", "")
        if code not in PROCESSING:
            if not is_digits(code, 6):
                return self.refuse(request, RC.FORMAT_ERROR, detail="field 3 missing or malformed")
            return self.refuse(request, RC.INVALID_TRANSACTION, detail=f"unknown processing code {code}")
        tax, kind = PROCESSING[code]
        mandatory = MANDATORY_PAYMENT if kind == "payment" else MANDATORY_0200
        if problem := format_problem(request, mandatory):
            return self.refuse(request, RC.FORMAT_ERROR, detail=problem)
        if refusal := self._bank_refusal(request, state):
            return self.refuse(request, RC.DO_NOT_HONOUR, detail=refusal)
        bank = state.bank.code
        key = MessageKey.iso(request["11"], request["7"], "02", key_content("02", request))
        parts = split_bill_id(tax, request["61"])
        if parts is None:
            return self.refuse(request, RC.FORMAT_ERROR, detail="field 61 malformed")
        if kind == "inquiry":
            if tax == "pbb":
                result = await self.engine.inquire_pbb(PbbInquiry(bank, parts[0], parts[1], key))
            else:
                result = await self.engine.inquire_bphtb(BphtbInquiry(bank, parts[0], parts[1], parts[2], key))
            return self._inquiry_outcome(request, result, key)
        origin = IsoOrigin(stan=request["11"], transmitted=request["7"], rrn=request["37"],
                           terminal_id=request["41"].strip())
        channel = Channel.from_iso(request["18"]).value
        answer_log = self._answer_log(state, lambda result: self._payment_outcome(request, result, key))
        if tax == "pbb":
            paid = await self.engine.pay_pbb(PbbPayment(
                bank, parts[0], parts[1], request["4"], request["48"], channel, key, via="iso", origin=origin,
                answer_log=answer_log))
        else:
            paid = await self.engine.pay_bphtb(BphtbPayment(
                bank, parts[0], request["4"], request["48"], channel, key, nop=parts[1], tax_year=parts[2],
                via="iso", origin=origin, answer_log=answer_log))
        return _mark_logged(self._payment_outcome(request, paid, key), paid, answer_log)

    @staticmethod
    def _answer_log(state: ConnectionState, outcome_of: Callable[[Any], Outcome]) -> Callable[[Any], Any] | None:
        """How the payment's transaction writes its approval's answer row: the same row the connection
        would queue after sending it."""
        if state.answer_row is None:
            return None
        row_of = state.answer_row
        return lambda result: row_of(outcome_of(result))

    def _inquiry_outcome(self, request: dict[str, str], result: InquiryResult, key: MessageKey) -> Outcome:
        fields = self.answer(request, result.rc, result.business_date)
        fields["4"] = ZERO_AMOUNT
        if result.rc == RC.APPROVED:
            assert result.amount is not None  # an approved inquiry carries the amount due
            fields["4"] = f"{result.amount.total:012d}"
        if result.rc in (RC.APPROVED, RC.ALREADY_PAID) and result.bill is not None:
            add_profile(fields, result)
        return Outcome(fields=fields, rc=result.rc, bill_id=request["61"], ntpd=result.ntpd,
                       message_key=key.key, detail="repeat" if result.repeated else None)

    def _payment_outcome(self, request: dict[str, str], result: PaymentResult, key: MessageKey) -> Outcome:
        fields = self.answer(request, result.rc, result.business_date)
        fields["4"] = request["4"]
        if result.rc == RC.APPROVED:
            assert result.ntpd is not None  # an approved payment has its NTPD
            fields["47"] = result.ntpd
            add_profile(fields, result)
            if result.validation_code:
                fields["63"] = result.validation_code
        elif result.rc == RC.ALREADY_PAID and result.ntpd:
            fields["47"] = result.ntpd  # the same bank may recover a payment it lost track of
        return Outcome(fields=fields, rc=result.rc, bill_id=request["61"], ntpd=result.ntpd,
                       message_key=key.key, detail="repeat" if result.repeated else None)

    # -- 0400 / 0401 -------------------------------------------------------------------------------

    async def _reversal(self, request: dict[str, str], state: ConnectionState) -> Outcome:
        code = request.get("3", "")
        if code not in (PBB_PAYMENT, BPHTB_PAYMENT):
            if not is_digits(code, 6):
                return self.refuse(request, RC.FORMAT_ERROR, detail="field 3 missing or malformed")
            return self.refuse(request, RC.INVALID_TRANSACTION, detail=f"processing code {code} is no payment")
        if problem := format_problem(request, MANDATORY_0400):
            return self.refuse(request, RC.FORMAT_ERROR, detail=problem)
        try:
            _, stan, transmitted, acquirer, forwarding = parse_original_data(request["90"])
        except ValueError:
            return self.refuse(request, RC.FORMAT_ERROR, detail="field 90 malformed")
        if refusal := self._bank_refusal(request, state):
            return self.refuse(request, RC.DO_NOT_HONOUR, detail=refusal)
        tax = PROCESSING[code][0]
        ntpd = request.get("47", "").strip() or None
        # A 0400 and its 0401 repeats share one key: the 0400's.
        key = MessageKey.iso(request["11"], request["7"], "04", key_content("04", request))
        original = None if ntpd else OriginalRef(stan, transmitted, acquirer, forwarding.lstrip("0"))
        answer_log = self._answer_log(state, lambda result: self._reversal_outcome(request, result, key))
        result = await self.engine.reverse(Reversal(
            bank=state.bank.code, amount=request["4"], key=key, ntpd=ntpd, original=original, tax=tax, via="iso",
            answer_log=answer_log))
        return _mark_logged(self._reversal_outcome(request, result, key), result, answer_log)

    def _reversal_outcome(self, request: dict[str, str], result: ReversalResult, key: MessageKey) -> Outcome:
        fields = self.answer(request, result.rc, result.business_date)
        return Outcome(fields=fields, rc=result.rc, bill_id=request["61"], ntpd=result.ntpd,
                       message_key=key.key,
                       detail="tombstone" if result.tombstone else ("repeat" if result.repeated else None))


def _mark_logged(outcome: Outcome, result: Any, answer_log: Callable[[Any], Any] | None) -> Outcome:
    outcome.logged = answer_written(result, answer_log)
    return outcome


def response_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


def key_content(mti_class: str, request: dict[str, str]) -> str:
    """What must be identical in a repeat: fields 3, 4, 48, 61 and the MTI class (spec/iso8583.md)."""
    return "|".join((mti_class, request.get("3", ""), request.get("4", ""), request.get("48", ""),
                     request.get("61", "")))


def same_bank(field32: str, bank_code: str) -> bool:
    return field32.lstrip("0") == bank_code.lstrip("0")


def is_digits(value: str, length: int | None = None) -> bool:
    return value.isascii() and value.isdigit() and (length is None or len(value) == length)


_FIXED_NUMERIC = {"3": 6, "4": 12, "7": 10, "11": 6, "12": 6, "13": 4, "18": 4, "49": 3, "70": 3, "90": 42}


def first_missing(request: dict[str, str], mandatory: tuple[str, ...]) -> str | None:
    for name in mandatory:
        value = request.get(name)
        if value is None or value == "":
            return name
        width = _FIXED_NUMERIC.get(name)
        if width is not None and not is_digits(value, width):
            return name
    return None


def format_problem(request: dict[str, str], mandatory: tuple[str, ...]) -> str | None:
    """The first mandatory field missing or malformed, a currency other than IDR, or an unknown channel."""
    if missing := first_missing(request, mandatory):
        return f"field {missing} missing or malformed"
    if request["49"] != CURRENCY_IDR:
        return "field 49: currency must be 360"
    try:
        Channel.from_iso(request["18"])
    except FormatError:
        return "field 18: unknown channel type"
    if not is_digits(request["32"]) or not request["37"].strip():
        return "field 32 or 37 malformed"
    return None


_PBB_61 = re.compile(r"^(\d{18})(\d{4})$")
_BPHTB_61 = re.compile(r"^(\d{14})(?:(\d{18})(\d{4}))?$")


def split_bill_id(tax: str, value: str) -> tuple | None:
    """Field 61: PBB NOP+year (22 digits); BPHTB registration (14), optionally + NOP + year (36)."""
    match = (_PBB_61 if tax == "pbb" else _BPHTB_61).match(value.strip())
    return match.groups() if match else None


def add_profile(fields: dict[str, str], result: InquiryResult | PaymentResult) -> None:
    """Field 62, when the bill can be shown in it. The answer's RC never depends on it: a payment has
    committed by now, and telling the bank otherwise would be worse than a missing profile."""
    try:
        fields["62"] = profile(result)
    except ValueError as exc:
        log.error("bill profile cannot be rendered; answer sent without field 62", ntpd=result.ntpd,
                  bill=result.bill.bill_key if result.bill else None, error=str(exc))


def profile(result: InquiryResult | PaymentResult) -> str:
    bill, amount = result.bill, result.amount
    assert bill is not None and amount is not None
    if bill.tax == "PBB":
        return pbb_profile(bill, amount, result.other_unpaid_years)
    return bphtb_profile(bill, amount)
