"""Stored answers: a service result as JSON and back (gateway/service/results.py), exactly."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime

from gateway.domain.assessment import Amount
from gateway.domain.relief import Relief
from gateway.service.results import (
    BillView,
    InquiryResult,
    PaymentResult,
    QuoteView,
    ReversalResult,
    from_json,
    to_json,
)

BILL = BillView(tax="PBB", bill_key="3275010001001000102026", nop="327501000100100010", tax_year=2026,
                taxpayer_name="SITI AMINAH", object_address="JL. MAWAR 3 NO. 4", kelurahan="MARGAHAYU",
                kecamatan="BEKASI TIMUR", region="KOTA BEKASI", land_area=120, building_area=90, status="unpaid",
                principal=150000, due_date=date(2026, 8, 31))
AMOUNT = Amount(principal=135000, penalty=0, total=135000, months_late=3, discount=15000, penalty_waived=4500,
                relief=Relief(id="hut-2026", name="HUT Kota", decree="Perwal 12/2026"))


def test_an_inquiry_answer_as_json_exactly():
    result = InquiryResult(rc="00", business_date=date(2026, 12, 1), bill=BILL, amount=AMOUNT,
                           other_unpaid_years=(2024, 2025),
                           quote=QuoteView(total=135000, expires_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC)))
    assert json.dumps(to_json(result)) == (
        '{"rc": "00", "business_date": "2026-12-01", "bill": {"tax": "PBB", "bill_key": "3275010001001000102026",'
        ' "nop": "327501000100100010", "tax_year": 2026, "taxpayer_name": "SITI AMINAH", "object_address":'
        ' "JL. MAWAR 3 NO. 4", "kelurahan": "MARGAHAYU", "kecamatan": "BEKASI TIMUR", "region": "KOTA BEKASI",'
        ' "land_area": 120, "building_area": 90, "status": "unpaid", "principal": 150000, "due_date": "2026-08-31",'
        ' "registration_number": null, "nik_masked": null, "acquisition_type": null, "acquisition_value": null,'
        ' "ppat_name": null, "valid_until": null}, "amount": {"principal": 135000, "penalty": 0, "total": 135000,'
        ' "months_late": 3, "discount": 15000, "penalty_waived": 4500, "relief": {"id": "hut-2026", "name":'
        ' "HUT Kota", "decree": "Perwal 12/2026"}}, "other_unpaid_years": [2024, 2025], "quote": {"total": 135000,'
        ' "expires_at": "2026-12-01T10:00:00+00:00"}, "ntpd": null, "repeated": false}')
    assert from_json(InquiryResult, json.loads(json.dumps(to_json(result)))) == result


def test_a_payment_answer_keeps_its_proof_as_it_is_and_round_trips():
    proof = {"v": 1, "ntpd": "327520261201000001", "amount": {"total": 135000}, "years": [2026], "paid": True}
    result = PaymentResult(rc="00", business_date=date(2026, 12, 1), ntpd="327520261201000001", bill=BILL,
                           amount=AMOUNT, paid_at=datetime(2026, 12, 1, 3, 4, 5, 678000, tzinfo=UTC), bank="110",
                           channel="atm", ntb="NTB000001", other_unpaid_years=(2025,), quote_used=True, proof=proof,
                           signature="c2ln", kid="2026-1", validation_code="ABCD-EFGH")
    data = to_json(result)
    assert data["proof"] is proof
    assert (data["paid_at"], data["other_unpaid_years"], data["quote_used"]) == (
        "2026-12-01T03:04:05.678000+00:00", [2025], True)
    assert from_json(PaymentResult, json.loads(json.dumps(data))) == result


def test_refusals_and_reversals_round_trip():
    for result, cls in ((InquiryResult(rc="14"), InquiryResult), (PaymentResult(rc="13", repeated=True), PaymentResult),
                        (ReversalResult(rc="00", business_date=date(2026, 12, 2), ntpd="327520261201000001",
                                        amount=135000, payment_business_date=date(2026, 12, 1), tombstone=True),
                         ReversalResult)):
        assert from_json(cls, json.loads(json.dumps(to_json(result)))) == result
    assert to_json(InquiryResult(rc="14")) == {"rc": "14", "business_date": None, "bill": None, "amount": None,
                                               "other_unpaid_years": [], "quote": None, "ntpd": None,
                                               "repeated": False}
