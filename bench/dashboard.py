"""The console's Beranda on a day of a million payments: DashboardService.overview and GET /console/ through a
running gateway, beside pgbench's select-only run on the same database.

    .venv/bin/python bench/dashboard.py [--database-url URL] [--payments 1000000] [--history 1000000]
                                        [--reversal-rate 0.01] [--log-rows 50000] [--calls 50]

One run, one scratch database (dropped afterwards):

1. seeds, as the owner in one transaction, with SQL (the append-only triggers and guards apply): ``--payments``
   PBB payments on today's business date across 8 banks x 8 channels, each with its three ledger entries and
   its active mark, ``--reversal-rate`` of them reversed (reversal, mirror entries, the mark gone); a history of
   ``--history`` payments over the 10 business dates before (no ledger: the dashboard never reads it) so that
   today is one date among several, as on a live system; ``--log-rows`` message-log rows over the last hour
   (requests and answers, ISO 8583 and HTTP, RC 00 mostly, some 14, 88, 91 and 96); then ANALYZE;
2. the reference: ``pgbench -S`` (select-only, one client) for 10 s on the same server;
3. DashboardService.overview through the runtime role's pool, ``--calls`` times after a warm-up: first with
   today's pages not yet visited by (auto)vacuum (autovacuum held off on payments), then after VACUUM, the
   steady state that migration 0013's autovacuum setting keeps;
4. ``gateway serve`` on the database, two banks connected over ISO 8583, a staff user signed in through the
   console's form: GET /console/ ``--calls`` times after a warm-up (the whole page, body read).

Prints p50 / p95 / max in milliseconds for each, and the EXPLAIN ANALYZE of the dashboard's statement.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _scratch import free_port, with_db  # noqa: E402

from gateway.banksim.client import IsoClient  # noqa: E402
from gateway.clock import Clock  # noqa: E402
from gateway.config import build_config  # noqa: E402
from gateway.domain.business_day import business_date  # noqa: E402
from gateway.staff.dashboard import ANSWERS_WINDOW, DashboardService  # noqa: E402
from gateway.staff.support import Actor  # noqa: E402
from gateway.store import dashboard as dashboard_store  # noqa: E402
from gateway.store.db import create_pool  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BANKS = ["110", "120", "130", "140", "150", "160", "170", "180"]
CHANNELS = ["teller", "atm", "edc", "phone", "internet", "kiosk", "autodebit", "mobile"]
PASSWORD = "bench password 123"
HISTORY_DAYS = 10

# Bills: today's payments pay tax year 2026 of NOPs 1..n, the history pays tax year 2025 of NOPs 1..h.
_BILLS = """
INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, due_date, status)
SELECT 'PBB', n.nop || $2::int::text, n.nop, $2::int, 'WAJIB PAJAK', 100000 + (i % 900) * 1000, DATE '2099-08-31', 'paid'
FROM generate_series(1, $1::int) i, LATERAL (SELECT '3275' || lpad(i::text, 13, '0') || '0' AS nop) n
"""

# Payments over HTTP (no STAN): NTPD 3275 26 1 + an 11-digit serial; bank and channel spread evenly.
_PAYMENTS = """
INSERT INTO payments (ntpd, bill_id, tax, bank_code, channel, via, ntb, principal, penalty, total, business_date,
                      paid_at)
SELECT '3275261' || lpad(($3::bigint + b.id)::text, 11, '0'), b.id, 'PBB', ($4::text[])[1 + b.id % 8],
       ($5::text[])[1 + (b.id / 8) % 8], 'http', 'NTB' || b.id, b.principal, 0, b.principal,
       $1::date - (CASE WHEN $2 = 2026 THEN 0 ELSE 1 + b.id % {days} END)::int,
       now() - (b.id % 36000) * interval '1 second'
FROM bills b WHERE b.tax_year = $2::int
"""

_LEDGER = """
INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id)
SELECT p.business_date, p.bank_code, p.tax, v.account,
       CASE v.account WHEN 'bank' THEN p.total WHEN 'principal' THEN -p.principal ELSE -p.penalty END, p.id
FROM payments p, (VALUES ('bank'), ('principal'), ('penalty')) v (account) WHERE p.business_date = $1
"""

_REVERSALS = """
INSERT INTO reversals (payment_id, bank_code, amount, via, reason, received_business_date, reversed_at)
SELECT id, bank_code, total, 'http', 'bench', business_date, paid_at + interval '1 minute'
FROM payments WHERE business_date = $1 AND id % $2 = 0
"""

_REVERSAL_LEDGER = """
INSERT INTO ledger_entries (business_date, bank_code, tax, account, amount, payment_id, reversal_id)
SELECT p.business_date, p.bank_code, p.tax, v.account,
       CASE v.account WHEN 'bank' THEN -p.total WHEN 'principal' THEN p.principal ELSE p.penalty END, p.id, r.id
FROM reversals r JOIN payments p ON p.id = r.payment_id, (VALUES ('bank'), ('principal'), ('penalty')) v (account)
"""

_ACTIVE = """
INSERT INTO active_payments (bill_id, payment_id)
SELECT bill_id, id FROM payments p
WHERE p.business_date = $1 AND NOT EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = p.id)
"""

# The last hour's traffic: request/answer pairs, 80 % ISO 8583; answers mostly 00, then 14, 88, 91, 96.
_MESSAGE_LOG = """
INSERT INTO message_log (logged_at, channel, direction, event, bank_code, connection_id, peer, mti,
                         processing_code, stan, rrn, response_code, bill_id, elapsed_ms, fields)
SELECT now() - ((i / 2) % 3599) * interval '1 second' - interval '1 second',
       CASE WHEN (i / 2) % 5 = 0 THEN 'http' ELSE 'iso' END, CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END,
       'message', ($2::text[])[1 + (i / 2) % 8], 'iso-' || ((i / 2) % 16), '10.0.0.' || (1 + (i / 2) % 8) || ':40000',
       CASE WHEN i % 2 = 0 THEN '0200' ELSE '0210' END, CASE WHEN (i / 2) % 3 = 0 THEN '341019' ELSE '541019' END,
       lpad(((i / 2) % 1000000)::text, 6, '0'), lpad((i / 2)::text, 12, '0'),
       CASE WHEN i % 2 = 0 THEN NULL WHEN (i / 2) % 500 = 7 THEN '91' WHEN (i / 2) % 997 = 3 THEN '96'
            WHEN (i / 2) % 40 = 1 THEN '14' WHEN (i / 2) % 60 = 2 THEN '88' ELSE '00' END,
       '3275' || lpad(((i / 2) % 1000000)::text, 13, '0') || '02026', 25,
       jsonb_build_object('t', CASE WHEN i % 2 = 0 THEN '0200' ELSE '0210' END, '11', lpad(((i / 2) % 1000000)::text, 6, '0'))
FROM generate_series(0, $1::int - 1) i
"""


def pgbench_select_only(url: str, seconds: int) -> dict:
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    subprocess.run([exe, "-i", "-q", "-s", "10", url], check=True, capture_output=True)
    out = subprocess.run([exe, "-S", "-c", "1", "-j", "1", "-T", str(seconds), url],
                         check=True, capture_output=True, text=True).stdout
    return {"tps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
            "latency_ms": float(re.search(r"latency average = ([\d.]+) ms", out).group(1))}


def summary(samples_ms: list[float]) -> str:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return f"p50 {statistics.median(samples_ms):6.1f}  p95 {q[94]:6.1f}  max {max(samples_ms):6.1f} ms"


async def seed(url: str, day, payments: int, history: int, reversal_rate: float, log_rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("SET statement_timeout = 0")
        t0 = time.perf_counter()
        async with conn.transaction():
            # Autovacuum held off on payments until the first measurement has seen today's pages unvisited.
            await conn.execute("ALTER TABLE payments SET (autovacuum_enabled = false)")
            for d in range(HISTORY_DAYS + 1):
                await conn.execute("INSERT INTO business_dates (business_date) VALUES ($1)", day - timedelta(days=d))
            await conn.execute(_BILLS, payments, 2026)
            if history:
                await conn.execute(_BILLS, history, 2025)
            await conn.execute(_PAYMENTS.format(days=HISTORY_DAYS), day, 2026, 0, BANKS, CHANNELS)
            if history:
                await conn.execute(_PAYMENTS.format(days=HISTORY_DAYS), day, 2025, 10 ** 10, BANKS, CHANNELS)
            await conn.execute(_LEDGER, day)
            every = max(1, round(1 / reversal_rate)) if reversal_rate > 0 else 0
            if every:
                await conn.execute(_REVERSALS, day, every)
                await conn.execute(_REVERSAL_LEDGER)
            await conn.execute(_ACTIVE, day)
            await conn.execute(_MESSAGE_LOG, log_rows, BANKS)
        await conn.execute("ANALYZE")
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM payments WHERE business_date = $1) AS today,"
            " (SELECT count(*) FROM payments) AS payments, (SELECT count(*) FROM reversals) AS reversals,"
            " (SELECT count(*) FROM ledger_entries) AS ledger, (SELECT count(*) FROM message_log) AS log", day)
        print(f"seeded in {time.perf_counter() - t0:.0f} s: {counts['today']:,} payments on {day} "
              f"({counts['payments']:,} in all), {counts['reversals']:,} reversals, {counts['ledger']:,} ledger "
              f"entries, {counts['log']:,} message-log rows")
    finally:
        await conn.close()


async def time_service(url: str, calls: int, label: str) -> list[float]:
    config = build_config({}, env={})
    pool = await create_pool(config.database, url)  # the runtime role's pool, as `gateway serve` runs it
    try:
        service = DashboardService(pool, config, Clock())
        actor = Actor("bench", via="bench")
        board = None
        for _ in range(5):
            try:
                board = await service.overview(actor)
            except asyncpg.QueryCanceledError:
                pass
        assert board is not None, "every warm-up call ran over the statement timeout"
        samples, refused = [], 0
        for _ in range(calls):
            t0 = time.perf_counter()
            try:
                board = await service.overview(actor)
            except asyncpg.QueryCanceledError:  # over the pool's statement_timeout_ms, as in `gateway serve`
                refused += 1
                continue
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"DashboardService.overview, {label:<28} {summary(samples) if samples else 'no answer':<44}  "
              f"({board.total.payments_count:,} payments, {board.total.reversals_count:,} reversals, "
              f"{sum(a.total for a in board.answer_lines()):,} answers"
              f"{f'; {refused} of {calls} over the statement timeout' if refused else ''})")
        return samples
    finally:
        await pool.close()


async def explain(url: str, day) -> None:
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        since = datetime.now(UTC) - ANSWERS_WINDOW
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + dashboard_store._OVERVIEW, day, since)
        print("\n".join("    " + r[0] for r in plan))
    finally:
        await conn.close()


def start_gateway(work: Path, url: str) -> tuple[subprocess.Popen, int, int, Path]:
    iso_port, http_port = free_port(), free_port()
    config = work / "gw.toml"
    banks = "".join(f'[[banks]]\ncode = "{code}"\nname = "BANK {code}"\nallow = ["127.0.0.{i + 1}/32"]\n'
                    for i, code in enumerate(BANKS))
    config.write_text(f'[state]\ndir = "{work}"\n[proof]\nkey_dir = "{work}/keys"\n'
                      f'[iso8583]\nlisten = "127.0.0.1:{iso_port}"\nsnapshot_interval_s = 1\n'
                      f'[http]\nlisten = "127.0.0.1:{http_port}"\npublic_url = "http://127.0.0.1:{http_port}"\n'
                      + banks)
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    subprocess.run([PY, "-m", "gateway", "staff", "add", "bench", "--role", "support", "--password-stdin",
                    "--config", str(config)], input=PASSWORD + "\n", text=True, check=True, capture_output=True,
                   env=env)
    log = work / "serve.log"
    server = subprocess.Popen([PY, "-m", "gateway", "serve", "--config", str(config)], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
            return server, iso_port, http_port, log
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("gateway did not start: " + log.read_text())
            time.sleep(0.1)


async def time_page(http_port: int, iso_port: int, calls: int) -> list[float]:
    base = f"http://127.0.0.1:{http_port}"
    clients = [IsoClient("127.0.0.1", iso_port, bank="110"), IsoClient("127.0.0.1", iso_port, bank="110")]
    for client in clients:
        await client.connect()
        assert (await client.request(client.network("001")))["39"] == "00"
    await asyncio.sleep(1.5)  # one snapshot round
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    try:
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/console/masuk") as resp:
                token = re.search(r'name="login_token" value="([^"]+)"', await resp.text()).group(1)
            async with http.post(base + "/console/masuk", allow_redirects=False,
                                 data={"login_token": token, "username": "bench", "password": PASSWORD}) as resp:
                assert resp.status == 303, await resp.text()
            for _ in range(5):
                async with http.get(base + "/console/") as resp:
                    page = await resp.text()
                    assert resp.status == 200 and "Beranda" in page, page[:500]
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter()
                async with http.get(base + "/console/") as resp:
                    await resp.read()
                samples.append((time.perf_counter() - t0) * 1000)
            rows = page.count('data-koneksi="')
            print(f"GET /console/ (signed in, {len(page) // 1024} KiB, {rows} connection rows)  {summary(samples)}")
            return samples
    finally:
        for client in clients:
            await client.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=os.environ.get("GATEWAY_BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--payments", type=int, default=1_000_000)
    ap.add_argument("--history", type=int, default=1_000_000)
    ap.add_argument("--reversal-rate", type=float, default=0.01)
    ap.add_argument("--log-rows", type=int, default=50_000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--pgbench-seconds", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database (prints its name)")
    args = ap.parse_args()
    name = f"gw_dashbench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_db(args.database_url, name)
    work = Path(tempfile.mkdtemp(prefix="gw-dashbench-"))
    server = None
    config = build_config({}, env={})
    day = business_date(datetime.now(UTC), config.region.tz, config.region.cutoff_time)
    try:
        await seed(url, day, args.payments, args.history, args.reversal_rate, args.log_rows)
        reference = pgbench_select_only(url, args.pgbench_seconds)
        print(f"pgbench -S (select-only, 1 client, {args.pgbench_seconds} s): {reference['tps']:,.0f} tps, "
              f"latency avg {reference['latency_ms']:.3f} ms")
        owner = await asyncpg.connect(url)
        try:
            # Today's pages as autovacuum has not visited them yet (held off since the seed), then as it keeps them.
            await time_service(url, args.calls, "before vacuum:")
            t0 = time.perf_counter()
            await owner.execute("VACUUM (ANALYZE) payments")
            await owner.execute("ALTER TABLE payments RESET (autovacuum_enabled)")
            print(f"VACUUM (ANALYZE) payments: {time.perf_counter() - t0:.1f} s")
        finally:
            await owner.close()
        await time_service(url, args.calls, "vacuumed (steady state):")
        print("EXPLAIN ANALYZE of the dashboard's statement (vacuumed):")
        await explain(url, day)
        server, iso_port, http_port, _ = start_gateway(work, url)
        await time_page(http_port, iso_port, args.calls)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        if args.keep:
            print(f"kept database {name}")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    from gateway.runtime import run_fast

    run_fast(main())
