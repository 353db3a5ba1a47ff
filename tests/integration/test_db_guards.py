"""The database guards its history by itself (migrations 0007, 0008), against real PostgreSQL.

The gateway's pool acts as ``gateway_runtime``: no DDL, no TRUNCATE, no DELETE of history. The triggers of
0008 hold for every role, the owner included: money only on an open business date, a closed date stays
closed, an active mark ends only by a reversal, message keys and quotes leave only through the retention
purge. The normal paths (pay, reverse, reverse an open date's payment on a later date, close, import) run
as the runtime role and are refused nothing.
"""
from __future__ import annotations

import io
import uuid
from datetime import date

import asyncpg
import pytest

from billdata import add_pbb
from gateway.bills.importer import import_file
from gateway.bills.rows import PBB_COLUMNS
from gateway.domain.bills import Tax
from gateway.domain.ntpd import make_ntpd
from gateway.engine import Engine
from gateway.service.context import ServiceContext
from gateway.service.requests import IsoOrigin, MessageKey, PbbInquiry, PbbPayment, Reversal
from gateway.settlement.close import close_business_date
from gateway.store.db import RUNTIME_ROLE, connect, create_pool
from helpers.dates import jakarta
from helpers.db import counts

pytestmark = pytest.mark.integration

DAY = date(2026, 11, 23)
NEXT_DAY = date(2026, 11, 24)
NOPS = ["327501000100100010", "327501000100100030", "327501000100100040", "327501000100100050"]
# 150,000 due 2026-08-31, paid in November 2026: 3 started months at 1%.
DUE = 154_500

HISTORY = ["payments", "reversals", "tombstones", "ledger_entries", "quotes", "proofs", "message_keys",
           "active_payments", "business_dates", "audit_log", "transaction_notes", "recon_items", "recon_reports"]


def pbb(nop: str, stan: str, f7: str = "1123021500", bank: str = "110") -> PbbPayment:
    return PbbPayment(bank=bank, nop=nop, tax_year=2026, amount=DUE, ntb="NTB" + stan, channel="atm",
                      key=MessageKey.iso(stan, f7, "02", f"{bank}|{nop}|{DUE}"),
                      origin=IsoOrigin(stan=stan, transmitted=f7, rrn="RRN" + stan, terminal_id="ATM1"))


def reversal(ntpd: str, stan: str, f7: str = "1123021500") -> Reversal:
    return Reversal("110", DUE, MessageKey.iso(stan, f7, "04", f"rev|{ntpd}"), ntpd=ntpd)


@pytest.fixture
async def runtime_pool(db_url, config):
    pool = await create_pool(config.database, db_url)
    yield pool
    await pool.close()


@pytest.fixture
async def runtime(runtime_pool):
    async with runtime_pool.acquire() as conn:
        yield conn


@pytest.fixture
async def rt_engine(runtime_pool, clock, config):
    return Engine(ServiceContext(pool=runtime_pool, clock=clock, config=config))


async def paid_day(engine, db) -> dict[str, str]:
    """On DAY: an inquiry (a quote), two payments, one of them reversed; returns the NTPDs."""
    for nop in NOPS[:2]:
        await add_pbb(db, nop=nop)
    assert (await engine.inquire_pbb(PbbInquiry("110", NOPS[0], 2026))).rc == "00"
    a = await engine.pay_pbb(pbb(NOPS[0], "000001"))
    b = await engine.pay_pbb(pbb(NOPS[1], "000002"))
    assert (a.rc, b.rc) == ("00", "00")
    assert (await engine.reverse(reversal(b.ntpd, "000003"))).rc == "00"
    return {"active": a.ntpd, "reversed": b.ntpd}


async def refused(conn, statement: str, *args, error=asyncpg.InsufficientPrivilegeError) -> asyncpg.PostgresError:
    with pytest.raises(error) as info:
        await conn.execute(statement, *args)
    return info.value


# -- the runtime role -------------------------------------------------------------------------------


async def test_the_pool_acts_as_the_runtime_role(runtime):
    assert await runtime.fetchval("SELECT current_user") == RUNTIME_ROLE
    owns = await runtime.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')")
    assert owns == 0


async def test_runtime_cannot_truncate_history(rt_engine, runtime, db):
    await paid_day(rt_engine, db)
    before = await counts(db, HISTORY)
    assert before["payments"] == 2 and before["quotes"] == 1 and before["message_keys"] == 3
    for table in HISTORY:
        error = await refused(runtime, f"TRUNCATE {table}")
        assert str(error) == f"permission denied for table {table}"
    assert await counts(db, HISTORY) == before


async def test_truncate_refused_even_for_the_owner(rt_engine, db):
    await paid_day(rt_engine, db)
    before = await counts(db, HISTORY)
    for table in HISTORY:
        # CASCADE: the referenced tables would otherwise be refused by their foreign keys first.
        error = await refused(db, f"TRUNCATE {table} CASCADE")
        expected = (f"table {table} is append-only (TRUNCATE refused)" if table == "audit_log"  # 0005's own
                    else f"table {table} keeps history: TRUNCATE refused")
        assert str(error) == expected
    for table in HISTORY:
        owner_trigger = await db.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND (tgtype & 32) <> 0", table)
        assert owner_trigger == 1, table
    assert await counts(db, HISTORY) == before


@pytest.mark.parametrize("statement, message", [
    ("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only", "must be owner of table ledger_entries"),
    ("ALTER TABLE payments DISABLE TRIGGER ALL", "must be owner of table payments"),
    ("ALTER TABLE active_payments DISABLE TRIGGER active_payments_delete", "must be owner of table active_payments"),
    ("DROP TRIGGER payments_open_date ON payments", "must be owner of relation payments"),
    ("DROP TABLE ledger_entries", "must be owner of table ledger_entries"),
    ("ALTER TABLE quotes OWNER TO gateway_runtime", "must be owner of table quotes"),
    ("CREATE TABLE scratch (a integer)", "permission denied for schema public"),
    ("CREATE FUNCTION scratch() RETURNS integer LANGUAGE sql AS 'SELECT 1'", "permission denied for schema public"),
    ("CREATE OR REPLACE FUNCTION gw_append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'",
     "permission denied for schema public"),
    ("ALTER FUNCTION gw_purge_message_keys(integer) SECURITY INVOKER",
     "must be owner of function gw_purge_message_keys"),
    ("SET session_replication_role = replica", 'permission denied to set parameter "session_replication_role"'),
])
async def test_runtime_runs_no_ddl_and_cannot_switch_triggers_off(runtime, statement, message):
    error = await refused(runtime, statement)
    assert str(error) == message
    assert await runtime.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'ledger_entries'::regclass AND tgenabled = 'D'") == 0


async def test_a_login_role_of_the_runtime_cannot_leave_it(db, db_url):
    """With a separate runtime URL the login role is only a member of gateway_runtime: leaving the role
    (SET ROLE NONE) gains nothing."""
    name = f"gw_app_{uuid.uuid4().hex[:8]}"
    await db.execute(f"CREATE ROLE {name} LOGIN IN ROLE {RUNTIME_ROLE}")
    try:
        conn = await asyncpg.connect(db_url, user=name, server_settings={"role": RUNTIME_ROLE})
        try:
            await conn.execute("SET ROLE NONE")
            assert await conn.fetchval("SELECT current_user") == name
            assert str(await refused(conn, "TRUNCATE payments")) == "permission denied for table payments"
            assert str(await refused(conn, "DELETE FROM ledger_entries")) == \
                "permission denied for table ledger_entries"
            assert str(await refused(conn, "ALTER TABLE ledger_entries DISABLE TRIGGER ALL")) == \
                "must be owner of table ledger_entries"
            owner = await db.fetchval("SELECT current_user")
            assert str(await refused(conn, f'SET ROLE "{owner}"')) == f'permission denied to set role "{owner}"'
        finally:
            await conn.close()
    finally:
        await db.execute(f"DROP ROLE {name}")


# -- rows of history --------------------------------------------------------------------------------


async def test_history_cannot_be_deleted_or_rewritten(rt_engine, runtime, db):
    await paid_day(rt_engine, db)
    before = await counts(db, HISTORY)
    for statement in ("DELETE FROM payments", "DELETE FROM ledger_entries", "DELETE FROM reversals",
                      "DELETE FROM message_keys", "DELETE FROM quotes", "DELETE FROM tombstones",
                      "DELETE FROM proofs", "DELETE FROM business_dates", "DELETE FROM audit_log",
                      "UPDATE message_keys SET answer = '{}'", "UPDATE quotes SET total = total",
                      "UPDATE payments SET total = 1", "UPDATE ledger_entries SET amount = 0",
                      "UPDATE active_payments SET payment_id = payment_id"):
        table = statement.split()[2 if statement.startswith("DELETE") else 1]
        assert str(await refused(runtime, statement)) == f"permission denied for table {table}", statement
    # Setting the purge's variable does not make the runtime role the owner.
    await runtime.execute("SET gateway.retention = 'on'")
    assert str(await refused(runtime, "DELETE FROM quotes")) == "permission denied for table quotes"
    await runtime.execute("RESET gateway.retention")
    # The owner is refused by the triggers.
    assert str(await refused(db, "DELETE FROM message_keys")) == \
        "table message_keys is kept until its retention purge (DELETE refused)"
    assert str(await refused(db, "UPDATE message_keys SET answer = '{}'")) == \
        "table message_keys is kept until its retention purge (UPDATE refused)"
    assert str(await refused(db, "DELETE FROM quotes")) == \
        "table quotes is kept until its retention purge (DELETE refused)"
    assert str(await refused(db, "UPDATE active_payments SET payment_id = payment_id")) == \
        "table active_payments is append-only (UPDATE refused)"
    assert str(await refused(db, "DELETE FROM business_dates")) == \
        "table business_dates is append-only (DELETE refused)"
    assert await counts(db, HISTORY) == before


async def test_an_active_mark_ends_only_by_its_reversal(rt_engine, runtime, db):
    ntpds = await paid_day(rt_engine, db)
    active = await db.fetchrow("SELECT bill_id, payment_id FROM active_payments")
    error = await refused(runtime, "DELETE FROM active_payments", error=asyncpg.CheckViolationError)
    assert error.constraint_name == "active_mark_ends_by_reversal"
    assert str(error) == (f"deleting the active mark of payment {active['payment_id']} refused:"
                          " only a reversal of the payment ends it")
    # The reversed payment's mark cannot come back, nor a mark name another bill's payment.
    reversed_id, reversed_bill = await db.fetchrow("SELECT id, bill_id FROM payments WHERE ntpd = $1",
                                                   ntpds["reversed"])
    error = await refused(runtime, "INSERT INTO active_payments (bill_id, payment_id) VALUES ($1, $2)",
                          reversed_bill, reversed_id, error=asyncpg.CheckViolationError)
    assert error.constraint_name == "active_mark_of_unreversed_payment"
    other_bill = await add_pbb(db, nop=NOPS[2])
    await db.execute("DELETE FROM active_payments WHERE false")  # a statement touching nothing is let through
    error = await refused(runtime, "INSERT INTO active_payments (bill_id, payment_id) VALUES ($1, $2)",
                          other_bill, reversed_id, error=asyncpg.CheckViolationError)
    assert error.constraint_name == "active_mark_of_unreversed_payment"
    assert [tuple(r) for r in await db.fetch("SELECT bill_id, payment_id FROM active_payments")] == \
        [tuple(active)]
    # The reversal (one statement: reversal, mark deleted, mirror entries) ends it.
    assert (await rt_engine.reverse(reversal(ntpds["active"], "000004"))).rc == "00"
    assert await db.fetchval("SELECT count(*) FROM active_payments") == 0


# -- business dates -------------------------------------------------------------------------------


async def close_day(pool, config, clock, day=DAY):
    clock.at = jakarta(day.year, day.month, day.day, 23, 30)
    return await close_business_date(pool, day, now_utc=clock.now(), tz=config.region.tz,
                                     cutoff=config.region.cutoff_time, operator="op1")


async def test_a_closed_date_stays_closed(rt_engine, runtime_pool, runtime, db, config, clock):
    await paid_day(rt_engine, db)
    result = await close_day(runtime_pool, config, clock)
    assert not result.already_closed
    frozen = await db.fetchrow("SELECT * FROM business_dates WHERE business_date = $1", DAY)
    assert frozen["state"] == "closed"
    for change in ("state = 'open'", "state = 'closing'", "totals = '[]'", "closed_by = 'mallory'",
                   "closed_at = now()", "closing_at = NULL"):
        for conn in (runtime, db):
            error = await refused(conn, f"UPDATE business_dates SET {change} WHERE business_date = $1", DAY,
                                  error=asyncpg.CheckViolationError)
            assert error.constraint_name == "closed_date_is_final"
            assert str(error) == "business date 2026-11-23 is closed: reopening it or changing its totals is refused"
    assert str(await refused(runtime, "DELETE FROM business_dates WHERE business_date = $1", DAY)) == \
        "permission denied for table business_dates"
    assert str(await refused(db, "DELETE FROM business_dates WHERE business_date = $1", DAY)) == \
        "table business_dates is append-only (DELETE refused)"
    assert str(await refused(db, "UPDATE business_dates SET business_date = '2026-11-22'"
                                 " WHERE business_date = $1", DAY)) == "business date 2026-11-23 cannot be renamed"
    assert await db.fetchrow("SELECT * FROM business_dates WHERE business_date = $1", DAY) == frozen
    # Closing again reports the frozen totals (no update of the row).
    again = await close_day(runtime_pool, config, clock)
    assert again.already_closed and again.totals == result.totals


async def test_a_closing_date_may_go_back_to_open(runtime, db):
    """A close that finds a mismatch puts the date back to open (settlement/close.py)."""
    await db.execute("INSERT INTO business_dates (business_date) VALUES ($1)", DAY)
    for state in ("closing", "open", "closing", "closed"):
        assert await runtime.execute("UPDATE business_dates SET state = $2 WHERE business_date = $1",
                                     DAY, state) == "UPDATE 1"


# -- money on dates that are not open ---------------------------------------------------------------


async def insert_payment(conn, bill_id: int, day: date, serial: int) -> int:
    return await conn.fetchval(
        "INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, principal, penalty, total,"
        " business_date, paid_at) VALUES ($1, $2, 'PBB', '110', 'teller', 'http', 'NTB1', 150000, 0, 150000,"
        " $3, now()) RETURNING id", make_ntpd(day, Tax.PBB, serial), bill_id, day)


@pytest.mark.parametrize("state", ["closing", "closed"])
async def test_money_refused_on_a_date_not_open(runtime, db, state):
    bill_id = await add_pbb(db)
    await db.execute("INSERT INTO business_dates (business_date, state) VALUES ($1, $2)", DAY, state)
    with pytest.raises(asyncpg.CheckViolationError) as info:
        await insert_payment(runtime, bill_id, DAY, 1)
    assert info.value.constraint_name == "money_on_open_date"
    assert str(info.value) == (f"payment refused: business date 2026-11-23 is {state};"
                               " money is booked only on an open business date")
    assert await db.fetchval("SELECT count(*) FROM payments") == 0


async def test_entries_and_reversals_of_a_closed_dates_payment_are_refused(runtime, db):
    bill_id = await add_pbb(db)
    await db.execute("INSERT INTO business_dates (business_date) VALUES ($1), ($2)", DAY, NEXT_DAY)
    payment_id = await insert_payment(runtime, bill_id, DAY, 1)
    # An entry on another date than its payment's is refused whatever the dates' states.
    error = await refused(
        runtime, "INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id)"
                 " VALUES ($1, '110', 'PBB', 'bank', 150000, $2)", NEXT_DAY, payment_id,
        error=asyncpg.CheckViolationError)
    assert error.constraint_name == "ledger_entry_of_its_payment"
    await db.execute("UPDATE business_dates SET state = 'closed' WHERE business_date = $1", DAY)
    error = await refused(
        runtime, "INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id)"
                 " VALUES ($1, '110', 'PBB', 'bank', -150000, $2)", DAY, payment_id,
        error=asyncpg.CheckViolationError)
    assert (error.constraint_name, str(error)) == (
        "money_on_open_date",
        "ledger entry refused: business date 2026-11-23 is closed; money is booked only on an open business date")
    # Received on an open date, the reversal still belongs to the payment's closed date.
    error = await refused(
        runtime, "INSERT INTO reversals (payment_id, bank_code, amount, via, received_business_date, reversed_at)"
                 " VALUES ($1, '110', 150000, 'http', $2, now())", payment_id, NEXT_DAY,
        error=asyncpg.CheckViolationError)
    assert (error.constraint_name, str(error)) == (
        "money_on_open_date",
        "reversal refused: business date 2026-11-23 is closed; money is booked only on an open business date")
    assert (await db.fetchval("SELECT count(*) FROM ledger_entries"),
            await db.fetchval("SELECT count(*) FROM reversals")) == (0, 0)


# -- the normal paths, as the runtime role ----------------------------------------------------------


async def test_normal_paths_are_refused_nothing(rt_engine, runtime_pool, db, db_url, config, clock, tmp_path):
    for nop in NOPS:
        await add_pbb(db, nop=nop)
    a = await rt_engine.pay_pbb(pbb(NOPS[0], "000001"))
    b = await rt_engine.pay_pbb(pbb(NOPS[1], "000002"))
    kept = await rt_engine.pay_pbb(pbb(NOPS[2], "000003"))
    assert (a.rc, b.rc, kept.rc) == ("00", "00", "00")
    assert (await rt_engine.reverse(reversal(a.ntpd, "000004"))).rc == "00"
    # The next morning, DAY still open: B is reversed on NEXT_DAY, its money leaves DAY.
    clock.at = jakarta(2026, 11, 24, 9, 0)
    late = await rt_engine.reverse(reversal(b.ntpd, "000001", f7="1124020000"))
    assert (late.rc, late.business_date, late.payment_business_date) == ("00", NEXT_DAY, DAY)
    assert await db.fetchval("SELECT received_business_date FROM reversals r JOIN payments p ON p.id = r.payment_id"
                             " WHERE p.ntpd = $1", b.ntpd) == NEXT_DAY
    assert await db.fetchval("SELECT array_agg(DISTINCT l.business_date) FROM ledger_entries l"
                             " JOIN payments p ON p.id = l.payment_id WHERE p.ntpd = $1", b.ntpd) == [DAY]
    d = await rt_engine.pay_pbb(pbb(NOPS[3], "000002", f7="1124020000"))
    assert (d.rc, d.business_date) == ("00", NEXT_DAY)
    # DAY closes (the close runs on the runtime pool); afterwards its payments' reversals get 57.
    closed = await close_day(runtime_pool, config, clock)
    assert {(t.bank, t.tax, t.payments_count, t.reversals_count) for t in closed.totals} == {("110", "PBB", 3, 2)}
    clock.at = jakarta(2026, 11, 24, 9, 30)
    assert (await rt_engine.reverse(reversal(kept.ntpd, "000003", f7="1124023000"))).rc == "57"
    assert (await rt_engine.reverse(reversal(d.ntpd, "000004", f7="1124023000"))).rc == "00"
    assert await db.fetchval("SELECT count(*) FROM reversals") == 3
    assert await db.fetchval("SELECT sum(amount) FROM ledger_entries") == 0
    # An import, as the operator's CLI runs it (the owner), keeps the bill with an active payment.
    path = tmp_path / "bills.csv"
    path.write_text(",".join(PBB_COLUMNS) + "\n" + "\n".join(
        f"{nop},2026,SITI AMINAH,JL. MERDEKA NO. 1,MARGAHAYU,BEKASI TIMUR,120,90,150000,2026-08-31,"
        for nop in (NOPS[2], "327501000100100060")) + "\n")
    owner = await connect(config.database, db_url)
    try:
        report = await import_file(owner, "pbb", str(path), strict=False, region_code="3275", err=io.StringIO())
    finally:
        await owner.close()
    # The file calls the paid bill unpaid: a conflict, reported, and the payment's state kept.
    assert (report.loaded, report.updated, report.invalid, report.conflicts) == (1, 0, 0, 1)
    statuses = {r["nop"]: r["status"] for r in await db.fetch("SELECT nop, status FROM bills WHERE tax_year = 2026")}
    assert (statuses[NOPS[2]], statuses["327501000100100060"]) == ("paid", "unpaid")


# -- digit rules (0016: the same rules as 0001, without bounded repetitions) ---------------------------


_PBB_ROW = ("INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, due_date, status)"
            " VALUES ('PBB', $1 || '2026', $1, 2026, 'SITI AMINAH', 1000, '2026-08-31', 'unpaid')")
_BPHTB_ROW = ("INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, valid_until, nik,"
              " status) VALUES ('BPHTB', $1, '327501000100100010', 2026, 'SITI AMINAH', 1000, '2026-12-31', $2,"
              " 'unpaid')")


@pytest.mark.parametrize("nop", ["32750100010010001", "32750100010010001x",
                                 "3275010001 0100010", "32750100010010001 ", "３２75010001001000１", ""])
async def test_a_nop_must_be_18_digits(db, nop):
    error = await refused(db, _PBB_ROW, nop, error=asyncpg.CheckViolationError)
    assert error.constraint_name in ("bills_nop_check", "bills_check")


async def test_digit_rules_accept_what_they_should(db):
    await db.execute(_PBB_ROW, "327501000100100010")
    await db.execute(_BPHTB_ROW, "12345678901234", "3275010101900001")
    assert await db.fetchval("SELECT count(*) FROM bills") == 2


@pytest.mark.parametrize(("key", "nik", "constraint"), [
    ("1234567890123", "3275010101900001", "bills_check1"),
    ("1234567890123x", "3275010101900001", "bills_check1"),
    ("123456789012345", "3275010101900001", "bills_check1"),
    ("12345678901234", "327501010190000", "bills_nik_check"),
    ("12345678901234", "327501010190000x", "bills_nik_check"),
    ("12345678901234", "32750101 1900001", "bills_nik_check"),
])
async def test_bphtb_key_and_nik_digit_rules(db, key, nik, constraint):
    error = await refused(db, _BPHTB_ROW, key, nik, error=asyncpg.CheckViolationError)
    assert error.constraint_name == constraint


# -- room on each page of bills for a payment's and a reversal's update (0017) ---------------------------


async def test_a_payment_and_its_reversal_update_the_bill_on_its_own_page(rt_engine, db):
    # Enough bills that the first pages are as full as the table lets them be, as after an import.
    nops = [f"3275010001{k:08d}" for k in range(1, 401)]
    for nop in nops:
        await add_pbb(db, nop=nop)
    where = "SELECT (ctid::text::point)[0]::int AS page, status FROM bills WHERE nop = $1 AND tax_year = 2026"
    first = nops[0]
    assert tuple(await db.fetchrow(where, first)) == (0, "unpaid")
    assert await db.fetchval("SELECT max((ctid::text::point)[0])::int FROM bills") >= 3
    assert await db.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'bills'") == ["fillfactor=90"]
    paid = await rt_engine.pay_pbb(pbb(first, "000001"))
    assert paid.rc == "00"
    # The new version of the row stayed on page 0 (a HOT update: no new entry in the three indexes);
    # at fillfactor 100 the page would be full and it would have gone to the last page.
    assert tuple(await db.fetchrow(where, first)) == (0, "paid")
    assert (await rt_engine.reverse(reversal(paid.ntpd, "000002"))).rc == "00"
    assert tuple(await db.fetchrow(where, first)) == (0, "unpaid")
