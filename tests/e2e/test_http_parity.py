"""The two channels are one gateway: a payment made over ISO 8583 is seen, refused as a duplicate and
reversed over HTTP, and the other way round; both channels quote the same amounts; a repeat on one channel
never creates a payment on the other (spec/http-api.md opening, spec/iso8583.md "Keys, repeats and
reversals", spec/domain.md invariants 1 and 2)."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from billdata import add_bphtb, add_pbb
from gateway.iso8583.profiles import parse_bphtb_profile, parse_pbb_profile
from helpers.dates import JAKARTA
from helpers.db import bill_status, counts
from helpers.http import BPHTB_NOP, FAR_DUE, NOP, PRINCIPAL, YEAR, assert_business, no_relief, pbb_body

pytestmark = pytest.mark.integration

BILL = NOP + str(YEAR)
BILL_1 = NOP + str(YEAR - 1)


def by_ntpd(bank, ntpd: str, bill_id: str, amount: int) -> dict[str, str]:
    """An ISO 0400 naming the payment by its NTPD in field 47, field 90 zeros."""
    rev = bank.reversal(bank.payment("pbb", bill_id, amount), ntpd=ntpd)
    rev["90"] = "0" * 42
    return rev


async def payments_of(db, bill_id: str) -> list[tuple]:
    rows = await db.fetch("SELECT p.ntpd, p.via, r.via AS reversed_via FROM payments p"
                          " JOIN bills b ON b.id = p.bill_id LEFT JOIN reversals r ON r.payment_id = p.id"
                          " WHERE b.bill_key = $1 ORDER BY p.id", bill_id)
    return [tuple(r) for r in rows]


async def test_paid_on_one_channel_is_88_on_the_other(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    http = http_client()
    async with gateway.client() as iso:
        # Paid over ISO 8583 …
        ans = await iso.request(iso.payment("pbb", BILL, PRINCIPAL))
        assert ans["39"] == "00"
        ntpd_iso = ans["47"]
        # … is RC 88 over HTTP, inquiry and payment, with the NTPD for the paying bank.
        body = assert_business(await http.pbb_inquiry(NOP, YEAR), "88")
        assert (body["ntpd"], body["bill"]["status"], body["amount"]["total"]) == (ntpd_iso, "paid", 0)
        body = assert_business(await http.pbb_payment("h1", **pbb_body()), "88")
        assert body["ntpd"] == ntpd_iso and "proof" not in body

        # Paid over HTTP …
        ntpd_http = assert_business(await http.pbb_payment("h2", **pbb_body(year=YEAR - 1)), "00")["ntpd"]
        # … is RC 88 over ISO 8583, inquiry and payment.
        ans = await iso.request(iso.inquiry("pbb", BILL_1))
        assert ans["39"] == "88" and ans["4"] == "0" * 12
        assert parse_pbb_profile(ans["62"])["total"] == 0
        pay = iso.payment("pbb", BILL_1, PRINCIPAL)
        ans = await iso.request(pay)
        assert ans["39"] == "88" and ans["47"] == ntpd_http and "63" not in ans
    assert await payments_of(db, BILL) == [(ntpd_iso, "iso", None)]
    assert await payments_of(db, BILL_1) == [(ntpd_http, "http", None)]
    c = await counts(db)
    assert (c["payments"], c["active_payments"]) == (2, 2)


async def test_reversed_across_channels(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    await add_pbb(db, year=YEAR - 1, due=FAR_DUE)
    http = http_client()
    async with gateway.client() as iso:
        # An HTTP payment reversed by an ISO 0400 naming its NTPD in field 47.
        ntpd_http = assert_business(await http.pbb_payment("h1", **pbb_body()), "00")["ntpd"]
        wrong = by_ntpd(iso, ntpd_http, BILL, PRINCIPAL + 1)
        ans = await iso.request(wrong)
        assert ans["39"] == "13"
        rev = by_ntpd(iso, ntpd_http, BILL, PRINCIPAL)
        ans = await iso.request(rev)
        assert (ans["t"], ans["39"], ans["47"], ans["11"]) == ("0410", "00", ntpd_http, rev["11"])
        assert await bill_status(db, "PBB", BILL) == "unpaid"
        status, _, view = await http.call("GET", f"/v1/payments/{ntpd_http}")
        assert status == 200 and view["status"] == "reversed"
        body = assert_business(await http.reversal("h2", ntpd=ntpd_http, amount=PRINCIPAL), "00")
        assert body["already_reversed"] is True

        # An ISO payment reversed over HTTP.
        pay = iso.payment("pbb", BILL_1, PRINCIPAL)
        ans = await iso.request(pay)
        ntpd_iso = ans["47"]
        body = assert_business(await http.reversal("h3", ntpd=ntpd_iso, amount=PRINCIPAL, reason="teller"), "00")
        assert (body["ntpd"], body["amount"], body["already_reversed"]) == (ntpd_iso, PRINCIPAL, False)
        assert await bill_status(db, "PBB", BILL_1) == "unpaid"
        # The ISO reversal that follows (by field 90) finds it reversed: 00, nothing more.
        ans = await iso.request(iso.reversal(pay))
        assert ans["39"] == "00"
    assert await payments_of(db, BILL) == [(ntpd_http, "http", "iso")]
    assert await payments_of(db, BILL_1) == [(ntpd_iso, "iso", "http")]
    c = await counts(db)
    assert (c["payments"], c["reversals"], c["active_payments"], c["tombstones"]) == (2, 2, 0, 0)
    assert await db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account = 'bank'") == 0


def spec_penalty(principal: int, due: date, paid_on: date) -> tuple[int, int]:
    """domain.md "Penalty", written again here: (penalty, months late) under the default policy."""
    rate, cap = (Decimal("0.02"), 24) if due < date(2024, 1, 1) else (Decimal("0.01"), 24)
    if paid_on <= due:
        return 0, 0
    months = (paid_on.year - due.year) * 12 + (paid_on.month - due.month) + (paid_on.day > due.day)
    months = min(months, cap)
    return int((principal * rate * months).quantize(Decimal(1), ROUND_HALF_UP)), months


async def test_inquiry_amounts_identical_on_both_channels(gateway, db, http_client):
    capped_due, late_due = date(2023, 8, 31), date(YEAR - 1, 8, 31)
    await add_pbb(db, principal=123_457, due=late_due)
    await add_pbb(db, year=YEAR - 1, principal=150_000, due=capped_due)
    await add_pbb(db, year=YEAR - 2, principal=100_000, due=FAR_DUE)
    registration = await add_bphtb(db, principal=5_000_000, penalty=250_000, valid_until=date(2099, 12, 31))
    paid_on = datetime.now(UTC).astimezone(JAKARTA).date()
    http = http_client()
    async with gateway.client() as iso:
        for year, principal, due in ((YEAR, 123_457, late_due), (YEAR - 1, 150_000, capped_due),
                                     (YEAR - 2, 100_000, FAR_DUE)):
            penalty, months = spec_penalty(principal, due, paid_on)
            ans = await iso.request(iso.inquiry("pbb", NOP + str(year)))
            body = assert_business(await http.pbb_inquiry(NOP, year), "00")
            assert ans["39"] == "00"
            profile = parse_pbb_profile(ans["62"])
            expected = {"principal": principal, "penalty": penalty, "total": principal + penalty,
                        "months_late": months}
            assert body["amount"] == no_relief(principal, penalty, principal + penalty, months), year
            assert {k: profile[k] for k in expected} == expected, year
            assert int(ans["4"]) == body["quote"]["total"] == principal + penalty
            assert profile["other_unpaid_years"] == body["other_unpaid_years"] == sorted(
                {YEAR, YEAR - 1, YEAR - 2} - {year}, reverse=True)
        assert spec_penalty(150_000, capped_due, paid_on) == (72_000, 24)

        ans = await iso.request(iso.inquiry("bphtb", registration + BPHTB_NOP + "2026"))
        body = assert_business(await http.bphtb_inquiry(registration, nop=BPHTB_NOP, tax_year=2026), "00")
        profile = parse_bphtb_profile(ans["62"])
        expected = {"principal": 5_000_000, "penalty": 250_000, "total": 5_250_000}
        assert body["amount"] == no_relief(5_000_000, 250_000, 5_250_000)
        assert {k: profile[k] for k in expected} == expected
        assert int(ans["4"]) == body["quote"]["total"] == 5_250_000
        for key in ("nik_masked", "taxpayer_name", "ppat_name", "acquisition_value"):
            assert profile[key] == body["bill"][key], key

        # What one channel quoted, the other accepts.
        total = int((await iso.request(iso.inquiry("pbb", BILL)))["4"])
        paid = assert_business(await http.pbb_payment("h1", **pbb_body(total)), "00")
        assert paid["amount"]["total"] == total and paid["proof"]["total"] == total
        ans = await iso.request(iso.payment("bphtb", registration, body["quote"]["total"]))
        assert ans["39"] == "00"
    rows = await db.fetch("SELECT tax, via, principal, penalty, total FROM payments ORDER BY id")
    assert [tuple(r) for r in rows] == [("PBB", "http", 123_457, paid["amount"]["penalty"], total),
                                        ("BPHTB", "iso", 5_000_000, 250_000, 5_250_000)]


async def test_a_repeat_never_pays_twice_across_channels(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    http = http_client()
    async with gateway.client() as iso:
        first = await http.pbb_payment("H", **pbb_body())
        ntpd1 = assert_business(first, "00")["ntpd"]
        pay = iso.payment("pbb", BILL, PRINCIPAL)
        iso_first = await iso.request(pay)
        assert iso_first["39"] == "88" and iso_first["47"] == ntpd1
        assert assert_business(await http.pbb_payment("H", **pbb_body()), "00", replayed=True) == first[2]
        assert await iso.request(dict(pay)) == iso_first

        # Reversed over ISO: the bill is payable again, but neither repeat pays it.
        assert (await iso.request(by_ntpd(iso, ntpd1, BILL, PRINCIPAL)))["39"] == "00"
        assert await bill_status(db, "PBB", BILL) == "unpaid"
        assert assert_business(await http.pbb_payment("H", **pbb_body()), "00", replayed=True) == first[2]
        assert await iso.request(dict(pay)) == iso_first
        assert await bill_status(db, "PBB", BILL) == "unpaid"
        assert (await counts(db))["payments"] == 1

        # A new ISO payment; an HTTP payment (new key) is 88; the old HTTP key still replays its answer.
        ans = await iso.request(iso.payment("pbb", BILL, PRINCIPAL))
        ntpd2 = ans["47"]
        assert ans["39"] == "00" and ntpd2 != ntpd1
        body = assert_business(await http.pbb_payment("H2", **pbb_body()), "88")
        assert body["ntpd"] == ntpd2
        assert assert_business(await http.pbb_payment("H", **pbb_body()), "00", replayed=True) == first[2]
    assert await payments_of(db, BILL) == [(ntpd1, "http", "iso"), (ntpd2, "iso", None)]
    keys = await db.fetch("SELECT channel, operation FROM message_keys ORDER BY id")
    assert [(k["channel"], k["operation"]) for k in keys] == [
        ("http", "pbb-payment"), ("iso", "pbb-payment"), ("iso", "reversal"), ("iso", "pbb-payment"),
        ("http", "pbb-payment")]
    c = await counts(db)
    assert (c["payments"], c["active_payments"], c["reversals"]) == (2, 1, 1)



async def test_iso_repeat_after_an_http_reversal_is_the_stored_answer(gateway, db, http_client):
    await add_pbb(db, due=FAR_DUE)
    http = http_client()
    async with gateway.client() as iso:
        pay = iso.payment("pbb", BILL, PRINCIPAL)
        first = await iso.request(pay)
        assert first["39"] == "00"
        assert_business(await http.reversal("h1", ntpd=first["47"], amount=PRINCIPAL), "00")
        again = await iso.request(dict(pay))
        assert again == first  # invariant 2: the original answer again, nothing changed
    assert await payments_of(db, BILL) == [(first["47"], "iso", "http")]
    assert await bill_status(db, "PBB", BILL) == "unpaid"
