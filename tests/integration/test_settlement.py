"""Closing a business date, the settlement report and the SISMIOP export against real PostgreSQL."""
from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date

import asyncpg
import pytest

from billdata import add_bphtb, add_pbb
from gateway.service.requests import BphtbPayment, Reversal
from gateway.settlement.close import SettlementError, close_business_date
from gateway.settlement.report import settlement_report_csv
from gateway.settlement.sismiop import sismiop_csv, split_nop
from helpers.dates import jakarta
from helpers.payments import DAY, key, pbb

pytestmark = pytest.mark.integration

NOPS = ["327501000100100010", "327501000100100030", "327501000100100040", "327501000100100050"]


async def make_day(engine, db):
    """On 2026-11-23: 110 pays two PBB bills and one BPHTB; 111 pays two PBB bills and reverses one."""
    for nop in NOPS:
        await add_pbb(db, nop=nop)
    registration = await add_bphtb(db)
    results = {
        "a": await engine.pay_pbb(pbb("110", NOPS[0], "000001")),
        "b": await engine.pay_pbb(pbb("110", NOPS[1], "000002")),
        "c": await engine.pay_bphtb(BphtbPayment("110", registration, 5_000_000, "NTBB1", "teller",
                                                 key("000003", "bphtb"))),
        "d": await engine.pay_pbb(pbb("111", NOPS[2], "000004")),
        "e": await engine.pay_pbb(pbb("111", NOPS[3], "000005")),
    }
    assert {r.rc for r in results.values()} == {"00"}, {k: r.rc for k, r in results.items()}
    rev = await engine.reverse(Reversal("111", 154_500, key("000006", "rev", cls="04"), ntpd=results["e"].ntpd))
    assert rev.rc == "00"
    return results


async def close(pool, config, clock, operator="op1"):
    return await close_business_date(pool, DAY, now_utc=clock.now(), tz=config.region.tz,
                                     cutoff=config.region.cutoff_time, operator=operator)


async def test_close_refused_before_cutoff(engine, pool, db, config, clock):
    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 23, 22, 59, 59)
    with pytest.raises(SettlementError, match="cut-off"):
        await close(pool, config, clock)
    assert await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", DAY) == "open"


async def test_close_freezes_independent_totals_and_is_idempotent(engine, pool, db, config, clock):
    results = await make_day(engine, db)
    expected = defaultdict(lambda: [0, 0, 0, 0])  # payments count/amount, reversals count/amount
    taxes = {"a": "PBB", "b": "PBB", "c": "BPHTB", "d": "PBB", "e": "PBB"}
    banks = {"a": "110", "b": "110", "c": "110", "d": "111", "e": "111"}
    for name, r in results.items():
        e = expected[(banks[name], taxes[name])]
        e[0] += 1
        e[1] += r.amount.total
    expected[("111", "PBB")][2:] = [1, results["e"].amount.total]

    clock.at = jakarta(2026, 11, 23, 23, 0)  # the cut-off instant: the day is over
    first = await close(pool, config, clock)
    assert not first.already_closed and first.closed_by == "op1"
    got = {(t.bank, t.tax): [t.payments_count, t.payments_amount, t.reversals_count, t.reversals_amount]
           for t in first.totals}
    assert got == dict(expected)
    row = await db.fetchrow("SELECT state, closed_by, closed_at, closing_at FROM business_dates"
                            " WHERE business_date = $1", DAY)
    assert (row["state"], row["closed_by"]) == ("closed", "op1")
    assert row["closed_at"] == clock.now() and row["closing_at"] == clock.now()

    clock.advance(hours=5)
    again = await close(pool, config, clock, operator="op2")
    assert again.already_closed and again.totals == first.totals
    assert (again.closed_by, again.closed_at) == ("op1", first.closed_at)

    # After the close, a reversal of the date's payment gets 57 and changes nothing.
    rev = await engine.reverse(Reversal("110", 154_500, key("000007", "late", cls="04"), ntpd=results["a"].ntpd))
    assert rev.rc == "57"
    assert await db.fetchval("SELECT count(*) FROM reversals") == 1


async def test_payment_during_closing_gets_90(engine, pool, db, config, clock):
    await add_pbb(db)
    await add_pbb(db, nop=NOPS[1])
    assert (await engine.pay_pbb(pbb("110", NOPS[0], "000001"))).rc == "00"
    await db.execute("UPDATE business_dates SET state = 'closing' WHERE business_date = $1", DAY)
    assert (await engine.pay_pbb(pbb("110", NOPS[1], "000002"))).rc == "90"
    assert await db.fetchval("SELECT count(*) FROM payments") == 1


async def test_close_waits_for_payment_in_flight(engine, pool, db, config, clock):
    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 23, 23, 30)
    holder = await pool.acquire()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM business_dates WHERE business_date = $1 FOR KEY SHARE", DAY)
        task = asyncio.create_task(close(pool, config, clock))
        await asyncio.sleep(0.3)
        assert not task.done()  # FOR UPDATE waits for the payment's FOR KEY SHARE
        await tx.commit()
        result = await asyncio.wait_for(task, 10)
    finally:
        await pool.release(holder)
    assert not result.already_closed


async def test_corrupted_ledger_aborts_close_and_leaves_date_open(engine, pool, db, config, clock):
    await make_day(engine, db)
    await db.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only")
    await db.execute("UPDATE ledger_entries SET amount = amount + 1"
                     " WHERE id = (SELECT min(id) FROM ledger_entries WHERE account = 'bank')")
    await db.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only")
    clock.at = jakarta(2026, 11, 24, 8, 0)
    with pytest.raises(SettlementError, match="not conserved") as info:
        await close(pool, config, clock)
    assert "110 PBB: net amount" in str(info.value)
    row = await db.fetchrow("SELECT state, totals, closed_at FROM business_dates WHERE business_date = $1", DAY)
    assert (row["state"], row["totals"], row["closed_at"]) == ("open", None, None)
    # the date being open, a new payment for it would still be accepted (state is not stuck in closing)
    assert await db.fetchval("SELECT count(*) FROM business_dates WHERE state <> 'open'") == 0


async def test_report_and_sismiop_exact_bytes(engine, pool, db, config, clock):
    results = await make_day(engine, db)
    open_report = await settlement_report_csv(db, DAY, config.banks)
    expected_report = (
        "business_date,bank_code,bank_name,tax,payments_count,principal,penalty,payments_amount,"
        "reversals_count,reversals_amount,net_count,net_amount,discount,penalty_waived\r\n"
        "2026-11-23,110,BANK 10,PBB,2,300000,9000,309000,0,0,2,309000,0,0\r\n"
        "2026-11-23,110,BANK 10,BPHTB,1,5000000,0,5000000,0,0,1,5000000,0,0\r\n"
        "2026-11-23,111,BANK 11,PBB,2,300000,9000,309000,1,154500,1,154500,0,0\r\n"
        "2026-11-23,TOTAL,,ALL,5,5600000,18000,5618000,1,154500,4,5463500,0,0\r\n"
    )
    assert open_report == expected_report  # running totals of an open date
    clock.at = jakarta(2026, 11, 24, 8, 0)
    await close(pool, config, clock)
    assert await settlement_report_csv(db, DAY, config.banks) == expected_report  # frozen totals

    ntpd = {k: r.ntpd for k, r in results.items()}
    expected_export = (
        "kd_propinsi,kd_dati2,kd_kecamatan,kd_kelurahan,kd_blok,no_urut,kd_jns_op,thn_pajak_sppt,"
        "pembayaran_sppt_ke,denda_sppt,jml_sppt_yg_dibayar,tgl_pembayaran_sppt,kd_bank,ntpd\r\n"
        f"32,75,010,001,001,0001,0,2026,1,4500,154500,2026-11-23,110,{ntpd['a']}\r\n"
        f"32,75,010,001,001,0003,0,2026,1,4500,154500,2026-11-23,110,{ntpd['b']}\r\n"
        f"32,75,010,001,001,0004,0,2026,1,4500,154500,2026-11-23,111,{ntpd['d']}\r\n"
    )
    assert await sismiop_csv(db, DAY) == expected_export


def test_split_nop():
    assert split_nop("327501000100100010") == ("32", "75", "010", "001", "001", "0001", "0")
    with pytest.raises(ValueError):
        split_nop("32750100010010001")


async def test_empty_open_date_report_has_total_row(db, config):
    assert await settlement_report_csv(db, date(2026, 1, 2), config.banks) == (
        "business_date,bank_code,bank_name,tax,payments_count,principal,penalty,payments_amount,"
        "reversals_count,reversals_amount,net_count,net_amount,discount,penalty_waived\r\n"
        "2026-01-02,TOTAL,,ALL,0,0,0,0,0,0,0,0,0,0\r\n")


def _cli(db_url, *args):
    env = {**os.environ, "GATEWAY_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def test_cli_close_report_export(engine, db, db_url, tmp_path):
    await make_day(engine, db)
    # the real clock is past 2026-11-23's cut-off only after that date; use a date long past instead
    past = "2020-01-02"
    run = await asyncio.to_thread(_cli, db_url, "settle", "close", past, "--operator", "cli-op")
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("2020-01-02,TOTAL,,ALL,0,0,0,0,0,0,0,0,0,0\n")  # text mode reads CRLF as \\n
    assert await db.fetchval("SELECT closed_by FROM business_dates WHERE business_date = '2020-01-02'") == "cli-op"
    future = await asyncio.to_thread(_cli, db_url, "settle", "close", "2999-01-01", "--operator", "cli-op")
    assert future.returncode == 1 and "cut-off" in future.stderr
    # The command line closes through the treasury service: the close and the refusal are audited, as for
    # the staff API.
    rows = await db.fetch("SELECT actor, action, target, detail FROM audit_log WHERE actor = 'cli-op' ORDER BY id")
    assert [(r["actor"], r["action"], r["target"], json.loads(r["detail"])) for r in rows] == [
        ("cli-op", "settlement.close", "2020-01-02", {"via": "cli", "already_closed": False}),
        ("cli-op", "settlement.close.refused", "2999-01-01",
         {"via": "cli", "reason": json.loads(rows[1]["detail"])["reason"]}),
    ]
    assert "cut-off" in json.loads(rows[1]["detail"])["reason"]
    out = tmp_path / "report.csv"
    rep = await asyncio.to_thread(_cli, db_url, "settle", "report", "2026-11-23", "--format", "csv",
                                  "--output", str(out))
    assert rep.returncode == 0, rep.stderr
    assert out.read_bytes().startswith(b"business_date,bank_code,") and b"TOTAL,,ALL,5," in out.read_bytes()
    pdf_path = tmp_path / "report.pdf"
    pdf = await asyncio.to_thread(_cli, db_url, "settle", "report", "2026-11-23", "--format", "pdf",
                                  "--output", str(pdf_path))
    assert pdf.returncode == 0 and pdf_path.read_bytes()[:5] == b"%PDF-"
    # Reports are read through the treasury service too: each read is audited.
    reads = await db.fetch("SELECT action, target, detail FROM audit_log WHERE action = 'settlement.report' ORDER BY id")
    assert [(r["action"], r["target"], json.loads(r["detail"])) for r in reads] == [
        ("settlement.report", "2026-11-23 csv", {"via": "cli"}), ("settlement.report", "2026-11-23 pdf", {"via": "cli"})]
    exp = await asyncio.to_thread(_cli, db_url, "payments", "export", "2026-11-23", "--format", "sismiop")
    assert exp.returncode == 0 and exp.stdout.count("\n") == 4
    bad = await asyncio.to_thread(_cli, db_url, "payments", "export", "23-11-2026", "--format", "sismiop")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr


async def test_report_pdf_renders_the_table_with_totals(engine, pool, db, config, clock):
    import io

    import pypdf

    from gateway.settlement.report import settlement_report_pdf

    await make_day(engine, db)
    clock.at = clock.at.replace(hour=17)  # 2026-11-24 00:00 Jakarta: past the cut-off of the 23rd
    await close(pool, config, clock, operator="bendahara")
    pdf = pypdf.PdfReader(io.BytesIO(await settlement_report_pdf(db, DAY, config)))
    assert len(pdf.pages) == 1
    text = " ".join(pdf.pages[0].extract_text().split())
    assert "Laporan penerimaan PBB-P2 dan BPHTB per bank" in text and "2026-11-23" in text
    assert "bendahara" in text and "tanda tangan" in text
    # TOTAL: 5 payments, 1 reversed, net 4 — with the amounts as the CSV has them
    total = next(r for r in csv.DictReader(io.StringIO(await settlement_report_csv(db, DAY, config.banks)))
                 if r["bank_code"] == "TOTAL")
    net = f"Rp{int(total['net_amount']):,}".replace(",", ".")
    gross = f"Rp{int(total['payments_amount']):,}".replace(",", ".")
    assert "TOTAL ALL 5" in text and net in text and gross in text


async def test_report_csv_round_trips_to_the_payments(engine, db, config):
    import io

    await make_day(engine, db)
    rows = list(csv.DictReader(io.StringIO(await settlement_report_csv(db, DAY, config.banks))))
    assert list(rows[0]) == ["business_date", "bank_code", "bank_name", "tax", "payments_count", "principal",
                             "penalty", "payments_amount", "reversals_count", "reversals_amount", "net_count",
                             "net_amount", "discount", "penalty_waived"]
    independent = {}
    for r in await db.fetch("SELECT p.bank_code, p.tax, p.total, r.id IS NOT NULL AS reversed FROM payments p"
                            " LEFT JOIN reversals r ON r.payment_id = p.id WHERE p.business_date = $1", DAY):
        entry = independent.setdefault((r["bank_code"], r["tax"]), [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += r["total"]
        entry[2] += r["reversed"]
        entry[3] += r["total"] if r["reversed"] else 0
    body = {(r["bank_code"], r["tax"]): [int(r["payments_count"]), int(r["payments_amount"]),
                                          int(r["reversals_count"]), int(r["reversals_amount"])]
            for r in rows if r["bank_code"] != "TOTAL"}
    assert body == independent
    total = rows[-1]
    assert (total["bank_code"], total["tax"]) == ("TOTAL", "ALL")
    assert int(total["net_amount"]) == sum(v[1] - v[3] for v in independent.values())


# --- a close that fails, crashes or runs on the request pool ---------------------------------------------


async def date_state(db):
    return tuple(await db.fetchrow("SELECT state, closing_at, closed_at FROM business_dates WHERE business_date = $1",
                                   DAY))


async def test_close_failing_after_marking_closing_puts_the_date_back_to_open(engine, pool, db, config, clock,
                                                                             monkeypatch):
    import gateway.settlement.close as close_module

    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 24, 8, 0)
    seen = []

    async def failing_totals(conn, day):
        seen.append(await db.fetchval("SELECT state FROM business_dates WHERE business_date = $1", day))
        await conn.execute("SELECT 1/0")        # a database error in step 4, after the check passed

    monkeypatch.setattr(close_module, "totals", failing_totals)
    with pytest.raises(asyncpg.DivisionByZeroError):
        await close(pool, config, clock)
    assert seen == ["closing"]
    assert await date_state(db) == ("open", None, None)
    monkeypatch.undo()
    result = await close(pool, config, clock)
    assert not result.already_closed and sum(t.payments_count for t in result.totals) == 5


@pytest.mark.parametrize("through", ["pool", "connection"])
async def test_close_whose_connection_breaks_reopens_on_a_fresh_one(engine, pool, db, db_url, config, clock,
                                                                    monkeypatch, through):
    import gateway.settlement.close as close_module

    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 24, 8, 0)

    async def killed_check(conn, day):
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(close_module, "check_conservation", killed_check)

    @contextlib.asynccontextmanager
    async def reconnect():
        fresh = await asyncpg.connect(db_url)
        try:
            yield fresh
        finally:
            await fresh.close()

    single = await asyncpg.connect(db_url) if through == "connection" else None
    try:
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.AdminShutdownError,
                            ConnectionError)):
            await close_business_date(single or pool, DAY, now_utc=clock.now(), tz=config.region.tz,
                                      cutoff=config.region.cutoff_time, operator="op1", reconnect=reconnect)
        assert single is None or single.is_closed()
    finally:
        if single is not None:
            await single.close()
    assert await date_state(db) == ("open", None, None)


async def test_cancelled_close_puts_the_date_back_to_open(engine, pool, db, config, clock, monkeypatch):
    import gateway.settlement.close as close_module

    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 24, 8, 0)

    async def endless_check(conn, day):
        await conn.execute("SELECT pg_sleep(600)")

    monkeypatch.setattr(close_module, "check_conservation", endless_check)
    task = asyncio.create_task(close(pool, config, clock))
    for _ in range(400):
        sleeping = await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                     " AND state = 'active' AND query = 'SELECT pg_sleep(600)'")
        if sleeping:
            break
        await asyncio.sleep(0.025)
    assert sleeping, "the close never reached its check"
    assert (await date_state(db))[0] == "closing"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await date_state(db) == ("open", None, None)


async def test_date_left_closing_by_a_crashed_close_is_taken_over(engine, pool, db, config, clock):
    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 24, 8, 0)
    # A close that died between marking the date closing and freezing it (e.g. SIGKILL).
    crashed_at = jakarta(2026, 11, 24, 7, 0)
    await db.execute("UPDATE business_dates SET state = 'closing', closing_at = $2 WHERE business_date = $1",
                     DAY, crashed_at)
    result = await close(pool, config, clock, operator="op2")
    assert not result.already_closed and result.closed_by == "op2"
    assert {(t.bank, t.tax): (t.payments_count, t.reversals_count) for t in result.totals} == {
        ("110", "PBB"): (2, 0), ("110", "BPHTB"): (1, 0), ("111", "PBB"): (2, 1)}
    assert await date_state(db) == ("closed", clock.now(), clock.now())


async def test_close_on_the_request_pool_runs_with_the_long_statement_timeout(engine, db, db_url, config, clock):
    from gateway.config import build_config
    from gateway.store.db import create_pool

    await make_day(engine, db)
    clock.at = jakarta(2026, 11, 24, 8, 0)
    # Every write of business_dates takes 0.3 s: longer than the request pool's statement timeout.
    await db.execute("CREATE FUNCTION slow_business_dates() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END$$")
    await db.execute("CREATE TRIGGER slow BEFORE UPDATE ON business_dates FOR EACH ROW"
                     " EXECUTE FUNCTION slow_business_dates()")
    settings = build_config({"database": {"statement_timeout_ms": 100}}, env={}, source="test").database
    requests = await create_pool(settings, db_url)         # the runtime role, as `gateway serve` uses it
    try:
        assert await requests.fetchval("SHOW statement_timeout") == "100ms"
        with pytest.raises(asyncpg.QueryCanceledError):     # a request's statement is cut at 100 ms
            await requests.execute("UPDATE business_dates SET closing_at = NULL WHERE business_date = $1", DAY)
        result = await close_business_date(requests, DAY, now_utc=clock.now(), tz=config.region.tz,
                                           cutoff=config.region.cutoff_time, operator="op1",
                                           statement_timeout_ms=settings.close_statement_timeout_ms)
        assert not result.already_closed
        # SET LOCAL: the pool's connections keep the request timeout.
        async with requests.acquire() as conn:
            assert await conn.fetchval("SHOW statement_timeout") == "100ms"
    finally:
        await requests.close()
    assert (await date_state(db))[0] == "closed"


async def test_housekeeping_publishes_the_dates_left_unclosed(pool, db, config):
    from gateway import metrics
    from gateway.service.housekeeping import housekeeping

    for day, state in (("2026-11-20", "closed"), ("2026-11-21", "open"), ("2026-11-22", "closing"),
                       ("2026-11-23", "open")):
        await db.execute("INSERT INTO business_dates (business_date, state) VALUES ($1, $2)",
                         date.fromisoformat(day), state)
    metrics.UNCLOSED_DATES.set(-1)
    task = asyncio.create_task(housekeeping(pool, config.database, lambda: date(2026, 11, 23)))
    try:
        for _ in range(200):
            if metrics.UNCLOSED_DATES._value.get() != -1:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert metrics.UNCLOSED_DATES._value.get() == 2  # the 21st (open) and the 22nd (closing), not today
