"""Relief programs in the payment engine against real PostgreSQL: a total reduced to nothing is still posted
(and reversed), and a quote keeps its program after the configuration has dropped it (spec/domain.md
"Relief programs")."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billdata import add_pbb
from gateway.domain.relief import ReliefProgram
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import IsoOrigin, MessageKey, PbbArrears, PbbInquiry, PbbPayment, Reversal
from gateway.settlement.invariants import check_conservation

pytestmark = pytest.mark.integration

NOP = "327501000100100010"
DAY = date(2026, 11, 23)  # the fixed clock's business date


def program(pid: str, discount: str, waiver: str) -> ReliefProgram:
    return ReliefProgram(id=pid, name=f"Program {pid}", decree=f"Decree {pid}", starts=date(2026, 11, 1),
                         ends=date(2026, 11, 30), taxes=frozenset({"PBB"}), principal_discount=Decimal(discount),
                         penalty_waiver=Decimal(waiver))


def engine_with(pool, clock, config, *programs: ReliefProgram) -> Engine:
    return Engine(ServiceContext(pool=pool, clock=clock, config=config, relief=programs))


def pay(amount: int, stan: str) -> PbbPayment:
    key = MessageKey.iso(stan, "1123021500", "02", f"{amount}|{stan}")
    return PbbPayment(bank="110", nop=NOP, tax_year=2026, amount=amount, ntb="NTB" + stan, channel="atm", key=key,
                      origin=IsoOrigin(stan=stan, transmitted="1123021500", rrn="RRN" + stan, terminal_id="ATM1"))


async def test_a_bill_reduced_to_nothing_is_paid_with_zero_and_reversed(pool, clock, config, db):
    await add_pbb(db, due=date(2026, 8, 31))  # 150.000, three months late on 2026-11-23: penalty 4.500
    engine = engine_with(pool, clock, config, program("FREE", "100", "100"))
    inquiry = await engine.inquire_pbb(PbbInquiry(bank="110", nop=NOP, tax_year="2026", key=None))
    assert inquiry.rc == "00" and inquiry.amount is not None
    assert (inquiry.amount.total, inquiry.amount.discount, inquiry.amount.penalty_waived) == (0, 150_000, 4_500)
    assert (await engine.pay_pbb(pay(154_500, "000001"))).rc == "13"  # the unreduced total
    paid = await engine.pay_pbb(pay(0, "000002"))
    assert paid.rc == "00" and paid.amount is not None
    assert (paid.amount.total, paid.amount.discount, paid.amount.penalty_waived) == (0, 150_000, 4_500)
    row = await db.fetchrow("SELECT principal, penalty, total, discount, penalty_waived, relief_id FROM payments")
    assert tuple(row) == (0, 0, 0, 150_000, 4_500, "FREE")
    assert await db.fetchval("SELECT status FROM bills") == "paid"
    reversal = await engine.reverse(Reversal("110", 0, MessageKey.iso("000003", "1123021500", "04", "r"),
                                             ntpd=paid.ntpd))
    assert reversal.rc == "00"
    assert await db.fetchval("SELECT amount FROM reversals") == 0
    assert await db.fetchval("SELECT status FROM bills") == "unpaid"
    assert await check_conservation(db, DAY) == []


async def test_a_quote_keeps_its_program_after_the_configuration_drops_it(pool, clock, config, db):
    await add_pbb(db, due=date(2026, 8, 31))
    engine = engine_with(pool, clock, config, program("B20", "20", "0"), program("A10", "10", "100"))
    # Both match; A10 takes 15.000 + 4.500 = 19.500, B20 30.000: B20 applies. 120.000 + 4.500.
    inquiry = await engine.inquire_pbb(PbbInquiry(bank="110", nop=NOP, tax_year="2026", key=None))
    assert inquiry.amount is not None and inquiry.amount.relief is not None
    assert (inquiry.amount.relief.id, inquiry.amount.total) == ("B20", 124_500)
    engine.ctx.relief = ()  # a reload without programs
    assert (await engine.inquire_pbb(PbbInquiry(bank="110", nop=NOP, tax_year="2026", key=None))).amount.total \
        == 154_500
    paid = await engine.pay_pbb(pay(124_500, "000001"))
    assert paid.rc == "00" and paid.quote_used
    row = await db.fetchrow("SELECT principal, penalty, discount, penalty_waived, relief_id, relief_name,"
                            " relief_decree, quote_id IS NOT NULL FROM payments")
    assert tuple(row) == (120_000, 4_500, 30_000, 0, "B20", "Program B20", "Decree B20", True)


async def test_the_arrears_list_shows_each_year_reduced_by_its_own_program(pool, clock, config, db):
    await add_pbb(db, due=date(2026, 8, 31))  # 2026: 150.000 + 4.500 (three months)
    await add_pbb(db, year=2024, principal=100_000, due=date(2024, 8, 31))  # 2024: 27 months, capped at 24: 24.000
    old = ReliefProgram(id="OLD", name="Old arrears", decree="D", starts=date(2026, 11, 1), ends=date(2026, 11, 30),
                        taxes=frozenset({"PBB"}), principal_discount=Decimal("25"), penalty_waiver=Decimal("50"),
                        max_year=2025)
    engine = engine_with(pool, clock, config, old, program("ALL10", "10", "0"))
    arrears = await engine.arrears_pbb(PbbArrears(bank="110", nop=NOP))
    lines = {line.bill.tax_year: line.amount for line in arrears.bills}
    # 2024: OLD takes 25.000 + 12.000 (more than ALL10's 10.000): 75.000 + 12.000.
    assert (lines[2024].total, lines[2024].discount, lines[2024].penalty_waived, lines[2024].relief.id) == \
        (87_000, 25_000, 12_000, "OLD")
    # 2026: only ALL10 matches: 135.000 + 4.500.
    assert (lines[2026].total, lines[2026].discount, lines[2026].relief.id) == (139_500, 15_000, "ALL10")
    assert arrears.total_due == 87_000 + 139_500
