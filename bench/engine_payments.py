"""Payment engine throughput beside pgbench's TPC-B-like run, on the same PostgreSQL, in one script.

    .venv/bin/python bench/engine_payments.py [--database-url URL] [--bills 20000] [--concurrency 32]

Creates a scratch database, seeds unpaid PBB bills, then runs: (1) pgbench -b tpcb-like at the same
concurrency for the same duration, (2) inquiry + payment pairs through the service layer (no network
channel), and prints transactions per second and the ratio. Drops the scratch database afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import date

import asyncpg

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _scratch import with_db  # noqa: E402

from gateway.clock import Clock  # noqa: E402
from gateway.config import build_config  # noqa: E402
from gateway.engine import Engine  # noqa: E402
from gateway.service.context import ServiceContext  # noqa: E402
from gateway.service.requests import IsoOrigin, MessageKey, PbbInquiry, PbbPayment  # noqa: E402
from gateway.store.db import create_pool  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402


def pgbench(url: str, clients: int, seconds: int) -> float:
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    env = {**os.environ}
    subprocess.run([exe, "-i", "-q", "-s", "10", url], check=True, capture_output=True, env=env)
    out = subprocess.run([exe, "-c", str(clients), "-j", "2", "-T", str(seconds), "-b", "tpcb-like", url],
                         check=True, capture_output=True, text=True, env=env).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


async def seed(conn: asyncpg.Connection, bills: int, year: int) -> list[str]:
    nops = [f"3275{(i // 1000) % 1000:03d}{i % 1000:03d}{i // 1_000_000:03d}{i % 10000:04d}0" for i in range(bills)]
    await conn.copy_records_to_table(
        "bills", columns=["tax", "bill_key", "nop", "tax_year", "taxpayer_name", "principal", "due_date", "status"],
        records=[("PBB", n + str(year), n, year, "WAJIB PAJAK", 150_000 + i, date(year, 8, 31), "unpaid")
                 for i, n in enumerate(nops)])
    return nops


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--bills", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_db(args.database_url, name)
    try:
        ref_tps = pgbench(url, args.concurrency, args.seconds)
        conn = await asyncpg.connect(url)
        await migrate(conn)
        year = 2026
        nops = await seed(conn, args.bills, year)
        await conn.close()
        config = build_config({"banks": [{"code": "110"}]}, env={})
        pool = await create_pool(replace(config.database, pool_min=args.concurrency, pool_max=args.concurrency), url)
        engine = Engine(ServiceContext(pool=pool, clock=Clock(), config=config))
        queue = list(reversed(nops))
        latencies: list[float] = []
        codes: dict[str, int] = {}
        deadline = time.perf_counter() + args.seconds
        stan = iter(range(1, 10**9))

        async def worker() -> None:
            while queue and time.perf_counter() < deadline:
                nop = queue.pop()
                t0 = time.perf_counter()
                inq = await engine.inquire_pbb(PbbInquiry("110", nop, year))
                s = f"{next(stan) % 1_000_000:06d}"
                f7 = "1123021500"
                res = await engine.pay_pbb(PbbPayment(
                    "110", nop, year, inq.amount.total, "NTB" + s, "atm",
                    MessageKey.iso(s, f7, "02", f"541019|{inq.amount.total}|{nop}"),
                    origin=IsoOrigin(s, f7)))
                latencies.append(time.perf_counter() - t0)
                codes[res.rc] = codes.get(res.rc, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - t0
        await pool.close()
        pairs = len(latencies)
        q = statistics.quantiles(latencies, n=100)
        print(f"pgbench tpcb-like     : {ref_tps:8.0f} tps  (clients {args.concurrency}, {args.seconds} s)")
        print(f"inquiry+payment pairs : {pairs / elapsed:8.0f} pairs/s  ({pairs} in {elapsed:.1f} s, codes {codes})")
        print(f"pair latency ms       : p50 {q[49] * 1000:.1f}  p95 {q[94] * 1000:.1f}  p99 {q[98] * 1000:.1f}")
        print(f"ratio pairs/pgbench   : {pairs / elapsed / ref_tps:.2f}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    from gateway.runtime import run_fast

    run_fast(main())
