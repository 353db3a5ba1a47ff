"""The payment engine against real PostgreSQL: invariants of spec/domain.md."""
from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from billdata import add_bphtb, add_pbb
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.domain.sspd import make_registration
from gateway.domain.transmission import transmission_year
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import (
    BphtbInquiry,
    BphtbPayment,
    IsoOrigin,
    MessageKey,
    OriginalRef,
    PbbArrears,
    PbbInquiry,
    PbbPayment,
    Reversal,
)
from gateway.settlement.invariants import check_conservation
from helpers.dates import jakarta

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
BUSINESS_DATE = date(2026, 11, 23)


def iso_key(stan: str, content: str = "c", f7: str = "1123021500", cls: str = "02") -> MessageKey:
    return MessageKey.iso(stan, f7, cls, content)


def pay(amount=154_500, bank="110", stan="000001", nop=NOP, year=2026, ntb="NTB1", f7="1123021500",
        content=None) -> PbbPayment:
    key = iso_key(stan, content or f"541019|{amount}|{ntb}|{nop}{year}", f7)
    return PbbPayment(bank=bank, nop=nop, tax_year=year, amount=amount, ntb=ntb, channel="atm", key=key,
                      origin=IsoOrigin(stan=stan, transmitted=f7, rrn="RRN" + stan, terminal_id="ATM00001"))


async def test_inquiry_computes_penalty_and_records_quote(engine, db):
    await add_pbb(db)
    await add_pbb(db, year=2024, due=date(2024, 8, 31), principal=140_000)
    await add_pbb(db, year=2023, due=date(2023, 8, 31), status="paid")
    result = await engine.inquire_pbb(PbbInquiry(bank="110", nop="32.75.010.001.001-0001.0", tax_year="2026"))
    assert result.rc == "00"
    assert result.business_date == BUSINESS_DATE
    # due 2026-08-31, paid 2026-11-23: 3 started months at 1% of 150,000
    assert (result.amount.principal, result.amount.penalty, result.amount.total, result.amount.months_late) == \
        (150_000, 4_500, 154_500, 3)
    assert result.other_unpaid_years == (2024,)
    assert result.quote.total == 154_500
    quotes = await db.fetch("SELECT bank_code, principal, penalty, total FROM quotes")
    assert [tuple(q) for q in quotes] == [("110", 150_000, 4_500, 154_500)]
    bill = await db.fetchrow("SELECT status, updated_at = imported_at AS untouched FROM bills WHERE bill_key = $1",
                             NOP + "2026")
    assert tuple(bill) == ("unpaid", True)


async def test_inquiry_answers(engine, db):
    await add_pbb(db, status="cancelled")
    await add_pbb(db, year=2025, status="paid")
    assert (await engine.inquire_pbb(PbbInquiry("110", NOP, 2026))).rc == "33"
    paid = await engine.inquire_pbb(PbbInquiry("110", NOP, 2025))
    assert paid.rc == "88" and paid.ntpd is None
    assert (paid.amount.principal, paid.amount.penalty, paid.amount.total) == (150_000, 0, 0)
    assert (await engine.inquire_pbb(PbbInquiry("110", NOP, 2020))).rc == "14"
    assert (await engine.inquire_pbb(PbbInquiry("110", "3276" + NOP[4:], 2026))).rc == "14"  # other region
    assert (await engine.inquire_pbb(PbbInquiry("110", NOP[:-1], 2026))).rc == "30"
    assert (await engine.inquire_pbb(PbbInquiry("110", NOP, "26"))).rc == "30"
    assert (await engine.inquire_pbb(PbbInquiry("901", NOP, 2026))).rc == "05"  # disabled bank
    assert (await engine.inquire_pbb(PbbInquiry("999", NOP, 2026))).rc == "05"  # unknown bank
    assert (await engine.inquire_bphtb(BphtbInquiry("900", "20261100012356"))).rc == "05"  # tax not enabled
    assert await db.fetchval("SELECT count(*) FROM quotes") == 0


async def test_payment_posts_once_with_ledger(engine, db):
    await add_pbb(db)
    result = await engine.pay_pbb(pay())
    assert result.rc == "00"
    assert result.ntpd[:7] == "2611231" and len(result.ntpd) == 18
    assert result.amount.total == 154_500 and result.bill.status == "paid"
    row = await db.fetchrow("SELECT bank_code, principal, penalty, total, stan, transmitted, channel, ntb"
                            " FROM payments WHERE ntpd = $1", result.ntpd)
    assert tuple(row) == ("110", 150_000, 4_500, 154_500, "000001", "1123021500", "atm", "NTB1")
    ledger = await db.fetch("SELECT account, amount FROM ledger_entries ORDER BY account")
    assert [tuple(r) for r in ledger] == [("bank", 154_500), ("penalty", -4_500), ("principal", -150_000)]
    assert await db.fetchval("SELECT status FROM bills WHERE bill_key = $1", NOP + "2026") == "paid"
    # the same bank inquiring again learns its NTPD back; another bank does not
    again = await engine.inquire_pbb(PbbInquiry("110", NOP, 2026))
    assert (again.rc, again.ntpd) == ("88", result.ntpd)
    other = await engine.inquire_pbb(PbbInquiry("111", NOP, 2026))
    assert (other.rc, other.ntpd) == ("88", None)


async def test_fifty_concurrent_payments_one_wins(engine, db):
    await add_pbb(db)
    requests = [pay(bank=str(100 + i), stan=f"{i + 1:06d}", ntb=f"NTB{i}") for i in range(50)]
    results = await asyncio.gather(*(engine.pay_pbb(r) for r in requests))
    codes = sorted(r.rc for r in results)
    assert codes == ["00"] + ["88"] * 49
    assert await db.fetchval("SELECT count(*) FROM payments") == 1
    assert await db.fetchval("SELECT count(*) FROM active_payments") == 1
    winner = next(r for r in results if r.rc == "00")
    # RC 88 carries the NTPD only for the bank that paid (none of the losers here)
    assert all(r.ntpd is None for r in results if r.rc == "88")
    assert await check_conservation(db, BUSINESS_DATE) == []
    assert await db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account = 'bank'") == winner.amount.total


async def test_concurrent_same_key_repeats_post_once(engine, db):
    await add_pbb(db)
    results = await asyncio.gather(*(engine.pay_pbb(pay()) for _ in range(20)))
    assert {r.rc for r in results} == {"00"}
    assert len({r.ntpd for r in results}) == 1
    assert sum(not r.repeated for r in results) == 1
    assert await db.fetchval("SELECT count(*) FROM payments") == 1


async def test_repeat_returns_identical_answer_and_changes_nothing(engine, db, clock):
    await add_pbb(db)
    first = await engine.pay_pbb(pay())
    counts = await db.fetchval("SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM ledger_entries)")
    clock.advance(minutes=3)
    repeat = await engine.pay_pbb(pay())
    assert repeat.repeated and not first.repeated
    assert repeat == type(first)(**{**first.__dict__, "repeated": True})
    assert await db.fetchval(
        "SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM ledger_entries)") == counts
    # same key, different content → 94, nothing changes
    different = await engine.pay_pbb(pay(amount=154_501, content="541019|154501|NTB1|x"))
    assert different.rc == "94"
    # a refused answer is stored too: repeating a 13 gives the 13 again
    await add_pbb(db, year=2025, due=date(2025, 8, 31))
    wrong = pay(amount=1, year=2025, stan="000002")
    assert (await engine.pay_pbb(wrong)).rc == "13"
    again = await engine.pay_pbb(wrong)
    assert (again.rc, again.repeated) == ("13", True)


async def test_amount_must_be_exact(engine, db):
    await add_pbb(db)
    assert (await engine.pay_pbb(pay(amount=154_499, stan="000001"))).rc == "13"
    assert (await engine.pay_pbb(pay(amount=154_501, stan="000002"))).rc == "13"
    assert (await engine.pay_pbb(pay(amount=150_000, stan="000003"))).rc == "13"
    assert (await engine.pay_pbb(pay(amount="abc", stan="000004"))).rc == "30"
    assert (await engine.pay_pbb(pay(ntb="", stan="000005"))).rc == "30"
    assert (await engine.pay_pbb(pay(ntb="X" * 33, stan="000006"))).rc == "30"
    assert await db.fetchval("SELECT count(*) FROM payments") == 0


async def test_reversal_then_payment_again(engine, db):
    await add_pbb(db)
    paid = await engine.pay_pbb(pay())
    rev = Reversal(bank="110", amount=154_500, key=iso_key("000001", "r", cls="04"),
                   original=OriginalRef("000001", "1123021500", "00000000110"), tax="pbb")
    reversed_ = await engine.reverse(rev)
    assert (reversed_.rc, reversed_.ntpd, reversed_.tombstone) == ("00", paid.ntpd, False)
    assert await db.fetchval("SELECT status FROM bills WHERE bill_key = $1", NOP + "2026") == "unpaid"
    assert await db.fetchval("SELECT count(*) FROM active_payments") == 0
    # the payment row is kept: history is append-only
    assert await db.fetchval("SELECT count(*) FROM payments") == 1
    # a 0401 repeat (same key) answers the same, a new reversal message answers 00 again; one reversal row
    assert (await engine.reverse(rev)).repeated
    by_ntpd = await engine.reverse(Reversal("110", 154_500, iso_key("000009", "r2", cls="04"), ntpd=paid.ntpd))
    assert (by_ntpd.rc, by_ntpd.already_reversed) == ("00", True)
    assert await db.fetchval("SELECT count(*) FROM reversals") == 1
    again = await engine.pay_pbb(pay(stan="000002", ntb="NTB2"))
    assert again.rc == "00" and again.ntpd != paid.ntpd
    assert await check_conservation(db, BUSINESS_DATE) == []
    net = await db.fetchval("SELECT sum(amount) FROM ledger_entries WHERE account = 'bank'")
    assert net == 154_500


async def test_reversal_rules(engine, db):
    await add_pbb(db)
    paid = await engine.pay_pbb(pay())
    other_bank = await engine.reverse(Reversal("111", 154_500, iso_key("000001", "x", cls="04"), ntpd=paid.ntpd))
    assert other_bank.rc == "12"
    foreign_original = await engine.reverse(Reversal(
        "111", 154_500, iso_key("000002", "x", cls="04"), original=OriginalRef("000001", "1123021500", "110")))
    assert foreign_original.rc == "12"
    assert (await engine.reverse(Reversal("110", 154_000, iso_key("000003", "x", cls="04"),
                                          ntpd=paid.ntpd))).rc == "13"
    # An NTPD with wrong check digits is malformed (RC 30); a well-formed one naming no payment is RC 14
    # (spec/iso8583.md "Response codes", "Reversal lookup"). Neither leaves a tombstone.
    malformed = await engine.reverse(Reversal("110", 154_500, iso_key("000004", "x", cls="04"),
                                              ntpd="261123199999999" + "900"))
    assert malformed.rc == "30"
    missing = await engine.reverse(Reversal("110", 154_500, iso_key("000005", "x", cls="04"),
                                            ntpd=make_ntpd(date(2026, 11, 23), Tax.PBB, 999_999_999)))
    assert missing.rc == "14"
    assert await db.fetchval("SELECT count(*) FROM reversals") == 0
    assert await db.fetchval("SELECT count(*) FROM tombstones") == 0


async def test_reversal_before_payment_leaves_tombstone(engine, db):
    await add_pbb(db)
    rev = await engine.reverse(Reversal("110", 154_500, iso_key("000007", "r", cls="04"),
                                        original=OriginalRef("000001", "1123021500", "110")))
    assert (rev.rc, rev.tombstone) == ("00", True)
    late = await engine.pay_pbb(pay())
    assert late.rc == "12"
    assert await db.fetchval("SELECT count(*) FROM payments") == 0
    assert await db.fetchval("SELECT status FROM bills") == "unpaid"
    # another message (new STAN) for the same bill still pays
    assert (await engine.pay_pbb(pay(stan="000002"))).rc == "00"


async def test_reversal_racing_its_payment(engine, db):
    """Whichever wins, the bill ends consistent: paid-and-reversed or tombstoned-and-refused."""
    for i in range(10):
        year = 2010 + i
        await add_pbb(db, year=year, due=date(2026, 12, 31))
        payment = pay(amount=150_000, year=year, stan=f"{i + 1:06d}")
        reversal = Reversal("110", 150_000, iso_key(f"{i + 1:06d}", "r", cls="04"),
                            original=OriginalRef(f"{i + 1:06d}", "1123021500", "110"))
        p, r = await asyncio.gather(engine.pay_pbb(payment), engine.reverse(reversal))
        assert r.rc == "00"
        if r.tombstone:
            assert p.rc == "12"
        else:
            assert p.rc == "00" and r.ntpd == p.ntpd
        assert await db.fetchval("SELECT status FROM bills WHERE tax_year = $1", year) == "unpaid"
    assert await db.fetchval("SELECT count(*) FROM active_payments") == 0
    assert await check_conservation(db, BUSINESS_DATE) == []


async def test_quote_honoured_after_penalty_month_rolls_over(engine, db, clock):
    await add_pbb(db, principal=1_000_000, due=date(2026, 8, 31))
    clock.at = jakarta(2026, 10, 31, 23, 55)
    shown = await engine.inquire_pbb(PbbInquiry("110", NOP, 2026))
    assert (shown.amount.months_late, shown.amount.total) == (2, 1_020_000)
    assert shown.business_date == date(2026, 11, 1)  # after the cut-off, but the penalty counts by calendar
    clock.at = jakarta(2026, 11, 1, 0, 5)  # a new month of penalty started at midnight
    now_due = await engine.inquire_pbb(PbbInquiry("111", NOP, 2026))
    assert (now_due.amount.months_late, now_due.amount.total) == (3, 1_030_000)
    # another bank cannot use bank 110's quote
    assert (await engine.pay_pbb(pay(amount=1_020_000, bank="111", stan="000001"))).rc == "13"
    paid = await engine.pay_pbb(pay(amount=1_020_000, bank="110", stan="000002"))
    assert paid.rc == "00" and paid.quote_used
    assert (paid.amount.principal, paid.amount.penalty, paid.amount.months_late) == (1_000_000, 20_000, 2)
    row = await db.fetchrow("SELECT principal, penalty, quote_id IS NOT NULL AS quoted FROM payments")
    assert tuple(row) == (1_000_000, 20_000, True)


async def test_quote_expires(engine, db, clock):
    await add_pbb(db, principal=1_000_000, due=date(2026, 8, 31))
    clock.at = jakarta(2026, 10, 31, 22, 50)
    await engine.inquire_pbb(PbbInquiry("110", NOP, 2026))
    clock.at = jakarta(2026, 10, 31, 23, 5, 1)  # 15 min 1 s later; also past the cut-off
    # quote expired, current total is still the 2-month amount (local date is still 31 October)
    late = await engine.pay_pbb(pay(amount=1_020_000, stan="000001"))
    assert late.rc == "00" and not late.quote_used
    assert late.business_date == date(2026, 11, 1)  # after the 23:00 cut-off
    await engine.reverse(Reversal("110", 1_020_000, iso_key("000001", "r", cls="04"), ntpd=late.ntpd))
    clock.at = jakarta(2026, 11, 1, 0, 21)
    assert (await engine.pay_pbb(pay(amount=1_020_000, stan="000002"))).rc == "13"


async def test_cancelled_and_expired_bills_are_not_payable(engine, db):
    await add_pbb(db, status="cancelled")
    assert (await engine.pay_pbb(pay(amount=150_000))).rc == "33"
    expired = await add_bphtb(db, valid_until=date(2026, 11, 22))
    valid_today = await add_bphtb(db, serial=124, valid_until=date(2026, 11, 23))
    assert (await engine.inquire_bphtb(BphtbInquiry("110", expired))).rc == "33"
    res = await engine.pay_bphtb(BphtbPayment("110", expired, 5_000_000, "N1", "teller",
                                              iso_key("000002", "b1")))
    assert res.rc == "33"
    ok = await engine.pay_bphtb(BphtbPayment("110", valid_today, 5_000_000, "N2", "teller", iso_key("000003", "b2")))
    assert ok.rc == "00" and ok.ntpd[6] == "2"
    assert await db.fetchval("SELECT count(*) FROM payments") == 1


async def test_bphtb_inquiry_and_cross_check(engine, db):
    reg = await add_bphtb(db, principal=5_000_000, penalty=250_000)
    res = await engine.inquire_bphtb(BphtbInquiry("110", reg))
    assert res.rc == "00"
    assert (res.amount.principal, res.amount.penalty, res.amount.total) == (5_000_000, 250_000, 5_250_000)
    assert res.bill.nik_masked == "327501******0004"
    assert (await engine.inquire_bphtb(BphtbInquiry("110", reg, "327501000100100020", 2026))).rc == "00"
    assert (await engine.inquire_bphtb(BphtbInquiry("110", reg, "327501000100100021", 2026))).rc == "14"
    assert (await engine.inquire_bphtb(BphtbInquiry("110", reg, "327501000100100020", 2025))).rc == "14"
    bad_check = reg[:-1] + str((int(reg[-1]) + 1) % 10)
    assert (await engine.inquire_bphtb(BphtbInquiry("110", bad_check))).rc == "30"
    # Wrong check digits: a format error (RC 30); the same serial with its right check digits names no bill (RC 14).
    assert (await engine.inquire_bphtb(BphtbInquiry("110", "20261100099997"))).rc == "30"
    assert (await engine.inquire_bphtb(BphtbInquiry("110", make_registration(2026, 11, 999)))).rc == "14"


async def test_closed_and_closing_dates(engine, db, clock):
    await add_pbb(db)
    paid = await engine.pay_pbb(pay())
    await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", BUSINESS_DATE)
    await add_pbb(db, year=2025, due=date(2025, 8, 31), principal=100_000)
    during = await engine.pay_pbb(pay(amount=115_000, year=2025, stan="000002"))
    assert during.rc == "90"
    assert (await engine.inquire_pbb(PbbInquiry("110", NOP, 2025))).rc == "90"
    rev = Reversal("110", 154_500, iso_key("000003", "r", cls="04"), ntpd=paid.ntpd)
    assert (await engine.reverse(rev)).rc == "90"
    # 90 is not stored: once the date is closed the same reversal gets 57
    await db.execute("UPDATE business_dates SET state = 'closed' WHERE business_date = $1", BUSINESS_DATE)
    assert (await engine.reverse(rev)).rc == "57"
    assert await db.fetchval("SELECT count(*) FROM reversals") == 0
    # the next business date is open for payments
    clock.advance(days=1)
    assert (await engine.pay_pbb(pay(amount=115_000, year=2025, stan="000004", f7="1124021500"))).rc == "00"


async def test_arrears(engine, db):
    await add_pbb(db)
    await add_pbb(db, year=2025, due=date(2025, 8, 31), principal=100_000)
    await add_pbb(db, year=2024, due=date(2024, 8, 31), status="paid")
    await add_pbb(db, year=2019, due=date(2019, 8, 31))  # outside the six-year window
    res = await engine.arrears_pbb(PbbArrears("110", NOP))
    assert res.rc == "00"
    assert [(line.bill.tax_year, line.amount.total) for line in res.bills] == \
        [(2026, 154_500), (2025, 115_000), (2024, 0)]
    assert res.total_due == 154_500 + 115_000
    assert (await engine.arrears_pbb(PbbArrears("110", "327501000100100099"))).rc == "14"
    assert await db.fetchval("SELECT count(*) FROM quotes") == 0


async def test_money_rows_are_append_only(engine, db):
    await add_pbb(db)
    await engine.pay_pbb(pay())
    for statement in ("UPDATE payments SET total = 1", "DELETE FROM ledger_entries",
                      "UPDATE ledger_entries SET amount = 0"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(statement)
    # the database itself refuses a second active payment of one bill
    pid = await db.fetchval("SELECT payment_id FROM active_payments")
    bill_id = await db.fetchval("SELECT bill_id FROM active_payments")
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute("INSERT INTO active_payments (bill_id, payment_id) VALUES ($1, $2)", bill_id, pid)


async def test_conservation_detects_a_corrupted_ledger(engine, db):
    await add_pbb(db)
    await engine.pay_pbb(pay())
    assert await check_conservation(db, BUSINESS_DATE) == []
    await db.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only")
    await db.execute("UPDATE ledger_entries SET amount = amount + 1 WHERE account = 'bank'")
    problems = await check_conservation(db, BUSINESS_DATE)
    assert {p.what for p in problems} >= {"net amount", "balance"}


async def test_database_unreachable_answers_91_without_hanging(config, clock):
    from gateway.engine import Engine
    from gateway.service.context import ServiceContext

    dead = await asyncpg.create_pool("postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=2, timeout=2)
    try:
        eng = Engine(ServiceContext(pool=dead, clock=clock, config=config))
        assert (await eng.pay_pbb(pay())).rc == "91"
        assert (await eng.inquire_pbb(PbbInquiry("110", NOP, 2026))).rc == "91"
    finally:
        await dead.close()


async def test_connection_lost_mid_payment_answers_91_and_commits_nothing(engine, db, db_url):
    await add_pbb(db)
    async with db.transaction():
        await db.execute("SELECT 1 FROM bills FOR UPDATE")  # the payment will wait on this lock
        task = asyncio.ensure_future(engine.pay_pbb(pay()))
        for _ in range(200):
            pid = await db.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if pid:
                break
            await asyncio.sleep(0.02)
        assert pid, "the payment never reached the bill lock"
        await db.execute("SELECT pg_terminate_backend($1)", pid)
        result = await task
    assert result.rc == "91"
    assert await db.fetchval("SELECT count(*) FROM payments") == 0
    assert await db.fetchval("SELECT count(*) FROM message_keys") == 0
    # the bank retries (or repeats): processed afresh
    assert (await engine.pay_pbb(pay())).rc == "00"


async def test_racing_payments_of_one_bank_learn_the_winners_ntpd(engine, db):
    """RC 88 to the bank that paid carries the NTPD, even for a payment that waited on the winner's lock."""
    await add_pbb(db)
    results = await asyncio.gather(*(engine.pay_pbb(pay(stan=f"{i + 1:06d}", ntb=f"N{i}")) for i in range(10)))
    winner = next(r for r in results if r.rc == "00")
    assert sorted(r.rc for r in results) == ["00"] + ["88"] * 9
    assert {r.ntpd for r in results} == {winner.ntpd}


async def test_approved_payment_carries_a_signed_proof(pool, clock, config, db, tmp_path):
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gateway.engine import Engine
    from gateway.proofs.keys import KeyStore
    from gateway.service.context import ServiceContext

    keys = KeyStore(tmp_path / "keys")
    kid = keys.init()
    eng = Engine(ServiceContext(pool=pool, clock=clock, config=config, keys=keys))
    await add_pbb(db)
    paid = await eng.pay_pbb(pay())
    assert paid.rc == "00" and paid.kid == kid
    assert paid.proof == {
        "v": 1, "ntpd": paid.ntpd, "tax": "PBB", "bill": NOP, "tax_year": 2026, "taxpayer": "SITI AMINAH",
        "principal": 150_000, "penalty": 4_500, "total": 154_500, "business_date": "2026-11-23",
        "paid_at": "2026-11-23T09:15:00+07:00", "bank": "110", "channel": "atm", "ntb": "NTB1", "region": "3275",
        "kid": kid}
    row = await db.fetchrow("SELECT document, signature, validation_code FROM proofs")
    assert json.loads(row["document"]) == paid.proof and row["signature"] == paid.signature
    # verified with the published raw public key and nothing of the gateway's code
    public = next(k for k in keys.public_keys() if k["kid"] == kid)["public_key"]
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(public + "=" * (-len(public) % 4)))
    canonical = json.dumps(paid.proof, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    key.verify(base64.urlsafe_b64decode(paid.signature + "=" * (-len(paid.signature) % 4)), canonical)
    # a repeat returns the same proof; no second proof row
    again = await eng.pay_pbb(pay())
    assert again.repeated and again.signature == paid.signature and again.validation_code == paid.validation_code
    assert await db.fetchval("SELECT count(*) FROM proofs") == 1


async def test_the_same_stan_and_field_7_a_year_later_is_a_new_message(engine, db):
    """Field 7 carries no year: last year's key, tombstone and payment with the same STAN and field 7 must
    neither answer this year's payment as a repeat (94), refuse it (12) nor be reversed in its place."""
    await add_pbb(db)
    this_year = transmission_year("1123021500", datetime.now(UTC))
    last_year = this_year - 1
    # Last year's traces of (bank 110, STAN 000001, field 7 1123021500): a tombstone and a stored key.
    await db.execute("INSERT INTO tombstones (bank_code, stan, transmitted, transmitted_year, amount,"
                     " business_date, created_at) VALUES ('110', '000001', '1123021500', $1, 154500, $2, now())",
                     last_year, date(last_year, 11, 23))
    await db.execute("INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)"
                     " VALUES ('iso', '110', $1, '\\x00', 'pbb-payment', '{\"rc\": \"00\"}')",
                     f"000001:{last_year}1123021500:02")
    paid = await engine.pay_pbb(pay())
    assert (paid.rc, paid.repeated) == ("00", False)
    row = await db.fetchrow("SELECT stan, transmitted, transmitted_year FROM payments")
    assert tuple(row) == ("000001", "1123021500", this_year)
    key = await db.fetchval("SELECT key FROM message_keys WHERE answer::text <> '{\"rc\": \"00\"}'")
    assert key == f"000001:{this_year}1123021500:02"
    # A reversal by field 90 finds this year's payment (last year's tombstone is no payment to reverse).
    rev = await engine.reverse(Reversal("110", 154_500, iso_key("000009", "r", cls="04"),
                                        original=OriginalRef("000001", "1123021500", "110")))
    assert (rev.rc, rev.tombstone, rev.ntpd) == ("00", False, paid.ntpd)
    assert await db.fetchval("SELECT count(*) FROM tombstones") == 1


async def test_an_inquiry_does_not_wait_for_a_payment_of_the_same_bill(db_url, db, clock, config):
    """A payment holds its bill FOR NO KEY UPDATE; the inquiry's quote (a foreign key: KEY SHARE) must not
    wait for it. The inquiring pool gives up on any lock after 200 ms, so a wait would be RC 91."""
    bill_id = await add_pbb(db)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2, server_settings={"lock_timeout": "200"})
    try:
        engine = Engine(ServiceContext(pool=pool, clock=clock, config=config))
        async with db.transaction():
            await db.execute("SELECT 1 FROM bills WHERE id = $1 FOR NO KEY UPDATE", bill_id)  # as a payment does
            result = await engine.inquire_pbb(PbbInquiry(bank="110", nop=NOP, tax_year="2026"))
            assert (result.rc, result.amount.total) == ("00", 154_500)
            # A payment of it does wait, and gives up (91) rather than drain anything.
            blocked = await engine.pay_pbb(pay())
            assert blocked.rc == "91"
        assert await db.fetchval("SELECT count(*) FROM quotes") == 1
        assert await db.fetchval("SELECT count(*) FROM payments") == 0
        assert (await engine.pay_pbb(pay())).rc == "00"
    finally:
        await pool.close()
