"""The ISO 8583 router (gateway/iso8583/messages.py) over a fake engine: what typed request each decoded
message becomes, what answer fields each typed result becomes, and which requests are refused before the
engine is called. No database, no sockets: the engine records what it receives and returns a chosen result."""
from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.config import BankConfig
from gateway.domain.assessment import Amount
from gateway.domain.transmission import transmission_year
from gateway.iso8583.messages import ConnectionState, Router
from gateway.iso8583.profiles import original_data, parse_pbb_profile, pbb_profile
from gateway.service.requests import IsoOrigin, MessageKey, OriginalRef, PbbInquiry, PbbPayment, Reversal
from gateway.service.results import BillView, InquiryResult, PaymentResult, ReversalResult

BANK = "110"
NOP = "327301000100100010"
YEAR = "2026"
STAN = "000123"
F7 = "1123021500"
RRN = "RRN000000123"
NTPD = "NTPD2026112300000001"
DAY = date(2026, 11, 23)  # the result's business date: field 15 "1123"
CTX_DAY = date(2026, 4, 15)  # the engine's own business date, used by refusals: field 15 "0415"

BILL = BillView(tax="PBB", bill_key=NOP + YEAR, nop=NOP, tax_year=2026, taxpayer_name="Budi Santoso",
                object_address="Jl. Merdeka 1", kelurahan="Sukajadi", kecamatan="Sukasari", region="Bandung",
                land_area=120, building_area=90, status="unpaid", principal=150_000, due_date=date(2026, 8, 31))
AMOUNT = Amount(principal=150_000, penalty=4_500, total=154_500, months_late=2)


class FakeEngine:
    """The Engine facade as the router uses it: every call recorded, every answer the chosen result."""

    def __init__(self, result: Any = None):
        self.result = result
        self.calls: list[tuple[str, Any]] = []
        self.ctx = SimpleNamespace(business_date=lambda now: CTX_DAY, clock=SimpleNamespace(now=lambda: None))

    async def _record(self, name: str, req: Any) -> Any:
        self.calls.append((name, req))
        return self.result

    async def inquire_pbb(self, req):
        return await self._record("inquire_pbb", req)

    async def inquire_bphtb(self, req):
        return await self._record("inquire_bphtb", req)

    async def pay_pbb(self, req):
        return await self._record("pay_pbb", req)

    async def pay_bphtb(self, req):
        return await self._record("pay_bphtb", req)

    async def reverse(self, req):
        return await self._record("reverse", req)


def state(**kw) -> ConnectionState:
    bank = kw.pop("bank", BankConfig(code=BANK))
    return ConnectionState(bank=bank, **kw)


def iso_key(mti_class: str, content: str) -> MessageKey:
    year = transmission_year(F7, datetime.now(UTC))
    return MessageKey("iso", f"{STAN}:{year}{F7}:{mti_class}", content)


def inquiry(**changes: str) -> dict[str, str]:
    fields = {"t": "0200", "3": "341019", "7": F7, "11": STAN, "12": "091500", "13": "1123", "18": "6011",
              "32": BANK, "37": RRN, "41": "ATM00001  ", "49": "360", "61": NOP + YEAR}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def payment(**changes: str) -> dict[str, str]:
    return inquiry(**{"3": "541019", "4": "000000154500", "48": "NTB-0001", **changes})


def reversal(**changes: str) -> dict[str, str]:
    f90 = original_data("0200", STAN, F7, BANK)
    return payment(**{"t": "0400", "11": "000124", "90": f90, **changes})


async def handle(request: dict[str, str], result: Any = None, st: ConnectionState | None = None):
    engine = FakeEngine(result)
    outcome = await Router(engine).handle(request, st or state())
    return engine, outcome


# --- PBB inquiry ----------------------------------------------------------------------------------


async def test_pbb_inquiry_becomes_the_pbb_inquiry_and_its_answer_carries_the_result():
    result = InquiryResult(rc="00", business_date=DAY, bill=BILL, amount=AMOUNT, other_unpaid_years=(2025, 2024))
    engine, outcome = await handle(inquiry(), result)

    key = iso_key("02", f"02|341019|||{NOP}{YEAR}")
    assert engine.calls == [("inquire_pbb", PbbInquiry(BANK, NOP, YEAR, key))]
    assert key.key == f"{STAN}:{transmission_year(F7, datetime.now(UTC))}{F7}:02"

    profile = pbb_profile(BILL, AMOUNT, (2025, 2024))
    assert outcome.fields == {
        "t": "0210", "39": "00", "4": "000000154500", "15": "1123", "62": profile,
        "3": "341019", "7": F7, "11": STAN, "12": "091500", "13": "1123", "18": "6011", "32": BANK, "37": RRN,
        "41": "ATM00001  ", "49": "360", "61": NOP + YEAR,
    }
    assert len(profile) == 287 and profile.startswith(NOP + YEAR + "Budi Santoso".ljust(35))
    slots = parse_pbb_profile(profile)
    assert (slots["total"], slots["penalty"], slots["months_late"]) == (154_500, 4_500, 2)
    assert slots["other_unpaid_years"] == [2025, 2024]
    assert (outcome.rc, outcome.bill_id, outcome.ntpd, outcome.message_key) == ("00", NOP + YEAR, None, key.key)
    assert (outcome.detail, outcome.logged) == (None, False)


async def test_pbb_inquiry_of_a_paid_bill_answers_88_with_zero_amount_the_profile_and_the_ntpd():
    result = InquiryResult(rc="88", business_date=DAY, bill=BILL, amount=Amount(150_000, 0, 0), ntpd=NTPD,
                           repeated=True)
    _, outcome = await handle(inquiry(), result)
    assert (outcome.fields["t"], outcome.fields["39"], outcome.fields["4"]) == ("0210", "88", "0" * 12)
    assert outcome.fields["62"] == pbb_profile(BILL, Amount(150_000, 0, 0), ())
    assert "47" not in outcome.fields  # an inquiry's answer never carries the NTPD; only the outcome does
    assert (outcome.ntpd, outcome.detail) == (NTPD, "repeat")


async def test_pbb_inquiry_of_an_unknown_bill_answers_14_without_profile():
    _, outcome = await handle(inquiry(), InquiryResult(rc="14", business_date=DAY))
    assert (outcome.fields["39"], outcome.fields["4"], outcome.rc) == ("14", "0" * 12, "14")
    assert "62" not in outcome.fields


# --- PBB payment ----------------------------------------------------------------------------------


def approved(**changes) -> PaymentResult:
    return PaymentResult(**{"rc": "00", "business_date": DAY, "ntpd": NTPD, "bill": BILL, "amount": AMOUNT,
                            "validation_code": "VC-7F3A9", **changes})


async def test_pbb_payment_becomes_the_pbb_payment_and_its_approval_carries_ntpd_and_validation_code():
    engine, outcome = await handle(payment(), approved())

    key = iso_key("02", f"02|541019|000000154500|NTB-0001|{NOP}{YEAR}")
    [(name, req)] = engine.calls
    assert name == "pay_pbb"
    assert req == PbbPayment(BANK, NOP, YEAR, "000000154500", "NTB-0001", "atm", key, via="iso",
                             origin=IsoOrigin(stan=STAN, transmitted=F7, rrn=RRN, terminal_id="ATM00001"))
    assert req.answer_log is None  # no database log on this connection

    assert outcome.fields == {
        "t": "0210", "39": "00", "4": "000000154500", "15": "1123", "47": NTPD, "63": "VC-7F3A9",
        "62": pbb_profile(BILL, AMOUNT, ()),
        "3": "541019", "7": F7, "11": STAN, "12": "091500", "13": "1123", "18": "6011", "32": BANK, "37": RRN,
        "41": "ATM00001  ", "48": "NTB-0001", "49": "360", "61": NOP + YEAR,
    }
    assert (outcome.rc, outcome.ntpd, outcome.message_key, outcome.logged) == ("00", NTPD, key.key, False)


async def test_pbb_payment_approval_without_validation_code_has_no_field_63():
    _, outcome = await handle(payment(), approved(validation_code=None))
    assert outcome.fields["47"] == NTPD and "63" not in outcome.fields


async def test_pbb_payment_approval_row_is_written_by_the_payment_when_the_connection_logs():
    rows = []
    st = state(answer_row=lambda outcome: rows.append(dict(outcome.fields)) or "row")
    engine, outcome = await handle(payment(), approved(), st)
    [(_, req)] = engine.calls
    assert req.answer_log(approved()) == "row"  # the row of the very answer the connection sends
    assert rows == [outcome.fields]
    assert outcome.logged is True

    _, repeat = await handle(payment(), approved(repeated=True), st)
    assert (repeat.logged, repeat.detail) == (False, "repeat")


@pytest.mark.parametrize("rc", ["13", "88"])
async def test_pbb_payment_refused_by_the_engine_answers_its_rc_without_ntpd(rc):
    _, outcome = await handle(payment(), PaymentResult(rc=rc, business_date=DAY))
    assert (outcome.fields["t"], outcome.fields["39"], outcome.fields["4"]) == ("0210", rc, "000000154500")
    assert not {"47", "62", "63"} & outcome.fields.keys()
    assert (outcome.rc, outcome.ntpd, outcome.logged) == (rc, None, False)


async def test_pbb_payment_88_with_the_ntpd_tells_the_bank_its_ntpd():
    _, outcome = await handle(payment(), PaymentResult(rc="88", business_date=DAY, ntpd=NTPD))
    assert (outcome.fields["39"], outcome.fields["47"]) == ("88", NTPD)
    assert not {"62", "63"} & outcome.fields.keys()


# --- reversal ---------------------------------------------------------------------------------------


async def test_reversal_by_field_90_becomes_the_reversal_with_the_original_parsed():
    result = ReversalResult(rc="00", business_date=DAY, ntpd=NTPD, amount=154_500)
    request = reversal()
    engine, outcome = await handle(request, result)

    key = MessageKey("iso", f"000124:{transmission_year(F7, datetime.now(UTC))}{F7}:04",
                     f"04|541019|000000154500|NTB-0001|{NOP}{YEAR}")
    assert engine.calls == [("reverse", Reversal(
        bank=BANK, amount="000000154500", key=key, ntpd=None,
        original=OriginalRef(stan=STAN, transmitted=F7, acquirer="00000000110", forwarding=""), tax="pbb",
        via="iso"))]
    assert outcome.fields == {
        "t": "0410", "39": "00", "15": "1123", "90": "0200" + STAN + F7 + "00000000110" + "0" * 11,
        "3": "541019", "4": "000000154500", "7": F7, "11": "000124", "12": "091500", "13": "1123", "18": "6011",
        "32": BANK, "37": RRN, "41": "ATM00001  ", "48": "NTB-0001", "49": "360", "61": NOP + YEAR,
    }
    assert (outcome.rc, outcome.ntpd, outcome.message_key) == ("00", NTPD, key.key)


async def test_reversal_repeat_0401_answers_0411_under_the_0400_key_and_field_47_names_the_ntpd():
    engine, outcome = await handle(reversal(t="0401", **{"47": f" {NTPD} "}),
                                   ReversalResult(rc="00", business_date=DAY, tombstone=True))
    [(_, req)] = engine.calls
    assert (req.ntpd, req.original, req.key.key.endswith(":04")) == (NTPD, None, True)
    assert (outcome.fields["t"], outcome.fields["39"], outcome.fields["47"]) == ("0411", "00", f" {NTPD} ")
    assert outcome.detail == "tombstone"


# --- refusals before the engine ---------------------------------------------------------------------


REFUSALS = [
    ("missing field 37", inquiry(**{"37": None}), "30"),
    ("missing field 48 of a payment", payment(**{"48": None}), "30"),
    ("field 4 not 12 digits", payment(**{"4": "154500"}), "30"),
    ("currency not IDR", inquiry(**{"49": "840"}), "30"),
    ("unknown channel", inquiry(**{"18": "7000"}), "30"),
    ("field 61 not NOP+year", inquiry(**{"61": NOP}), "30"),
    ("field 3 not digits", inquiry(**{"3": "34A019"}), "30"),
    ("another bank's field 32", inquiry(**{"32": "120"}), "05"),
    ("unknown processing code", inquiry(**{"3": "381019"}), "12"),
    ("0100 is no MTI of this gateway", inquiry(t="0100"), "12"),
    ("reversal of an inquiry code", reversal(**{"3": "341019"}), "12"),
    ("reversal with field 90 missing", reversal(**{"90": None}), "30"),
    ("reversal of another bank", reversal(**{"32": "120"}), "05"),
]


@pytest.mark.parametrize("request_, rc", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_a_refused_request_is_answered_without_calling_the_engine(request_, rc):
    engine, outcome = await handle(request_, approved())
    assert engine.calls == []
    assert (outcome.rc, outcome.fields["39"], outcome.fields["15"]) == (rc, rc, "0415")
    assert outcome.fields["t"] == {"0200": "0210", "0400": "0410", "0100": "0110"}[request_["t"]]
    assert outcome.detail


async def test_a_refused_0200_carries_field_4_the_request_s_when_valid_else_zeros():
    _, valid = await handle(payment(**{"32": "120"}))
    _, broken = await handle(payment(**{"4": "15x500000000"}))
    _, absent = await handle(inquiry(**{"3": "381019"}))
    assert (valid.fields["4"], broken.fields["4"], absent.fields["4"]) == ("000000154500", "0" * 12, "0" * 12)


async def test_field_32_with_leading_zeros_is_the_same_bank():
    engine, outcome = await handle(inquiry(**{"32": "00110"}), InquiryResult(rc="14", business_date=DAY))
    assert [name for name, _ in engine.calls] == ["inquire_pbb"] and outcome.rc == "14"


@pytest.mark.parametrize("st, detail", [
    (state(bank=BankConfig(code=BANK, enabled=False)), "bank disabled"),
    (state(signed_off=True), "signed off"),
    (state(bank=BankConfig(code=BANK, require_sign_on=True)), "sign-on required"),
], ids=["disabled", "signed-off", "not-signed-on"])
async def test_the_connection_state_refuses_financial_requests_with_05(st, detail):
    engine, outcome = await handle(payment(), approved(), st)
    assert engine.calls == []
    assert (outcome.rc, outcome.fields["39"], outcome.detail) == ("05", "05", detail)


# --- network management -------------------------------------------------------------------------------


def network(code: str, **changes: str) -> dict[str, str]:
    return {"t": "0800", "7": F7, "11": STAN, "32": BANK, "70": code, **changes}


@pytest.mark.parametrize("code, event, signed_on, signed_off", [
    ("301", "message", False, False),
    ("001", "sign_on", True, False),
    ("002", "sign_off", False, True),
    ("201", "cutover", False, False),
])
async def test_network_message_is_answered_0810_00_without_the_engine(code, event, signed_on, signed_off):
    st = state()
    engine, outcome = await handle(network(code, **{"48": "ignored"}), st=st)
    assert engine.calls == []
    assert outcome.fields == {"t": "0810", "39": "00", "7": F7, "11": STAN, "32": BANK, "70": code}
    assert (outcome.rc, outcome.event) == ("00", event)
    assert (st.signed_on, st.signed_off) == (signed_on, signed_off)


@pytest.mark.parametrize("request_, rc", [
    (network("999"), "12"),
    (network("301", **{"32": "120"}), "05"),
    ({"t": "0800", "7": F7, "11": STAN, "32": BANK}, "30"),
])
async def test_network_message_refusals(request_, rc):
    engine, outcome = await handle(request_)
    assert engine.calls == []
    assert (outcome.fields["t"], outcome.fields["39"]) == ("0810", rc)
    assert "15" not in outcome.fields
