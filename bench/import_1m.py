"""Benchmark: import a 1,000,000-row PBB-P2 CSV (spec/operations.md: "a million rows must take well
under a minute").

Generates a deterministic, valid CSV for region 3275, creates a fresh database on the given server,
migrates it, and measures in one run:

  reference   plain COPY of the same file into an unindexed table of text columns (copy_to_table)
  import      gateway.bills.importer.import_file of the file into the empty bills table
  re-import   the same file again (every row an update; unchanged rows are compared, not rewritten)
  changed     a variant of the file with every amount changed (every row an update that is written)

and prints rows, seconds, rows/s, the ratio to the reference and the process's peak RSS after each step.
The database is dropped afterwards. Not a test: run it by hand (bench/README.md).

    .venv/bin/python bench/import_1m.py [--rows N] [--database-url URL] [--keep-file]
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.bills.importer import import_file  # noqa: E402
from gateway.bills.rows import PBB_COLUMNS  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
KECAMATAN = ["PONDOKGEDE", "JATISAMPURNA", "PONDOKMELATI", "JATIASIH", "BANTARGEBANG", "MUSTIKAJAYA",
             "BEKASI TIMUR", "RAWALUMBU", "BEKASI SELATAN", "BEKASI BARAT", "MEDAN SATRIA", "BEKASI UTARA"]
NAMES = ["SITI AMINAH", "BUDI SANTOSO", "AGUS SETIAWAN", "DEWI LESTARI", "AHMAD FAUZI", "NURHAYATI",
         "RUDI HARTONO", "SRI WAHYUNI", "HENDRA GUNAWAN", "YULIANA SARI"]


def generate(path: Path, rows: int, seed: int = 3275, amount_delta: int = 0) -> None:
    """``rows`` valid PBB rows: 5 tax years per NOP, NOPs spread over 12 districts, in NOP order."""
    rng = random.Random(seed)
    years = (2022, 2023, 2024, 2025, 2026)
    objects = (rows + len(years) - 1) // len(years)
    per_district = (objects + len(KECAMATAN) - 1) // len(KECAMATAN)
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PBB_COLUMNS)
        for i in range(objects):
            district, n = divmod(i, per_district)
            village, n = divmod(n, 20_000)
            block, serial = divmod(n, 9_999)
            nop = f"3275{(district + 1) * 10:03d}{village + 1:03d}{block + 1:03d}{serial + 1:04d}0"
            display = f"{nop[0:2]}.{nop[2:4]}.{nop[4:7]}.{nop[7:10]}.{nop[10:13]}-{nop[13:17]}.{nop[17]}"
            name = NAMES[rng.randrange(len(NAMES))]
            address = f"JL. MAWAR {rng.randrange(1, 40)} NO. {rng.randrange(1, 200)}"
            land = rng.randrange(60, 600)
            building = rng.randrange(0, 400)
            base = land * 1_500 + building * 900
            for k, year in enumerate(years):
                if written == rows:
                    return
                status = "paid" if k < 4 and rng.random() < 0.7 else ""
                w.writerow((display if k % 2 else nop, year, name, address, f"KELURAHAN {village + 1}",
                            KECAMATAN[district], land, building, base + k * 1000 + amount_delta,
                            f"{year}-08-31", status))
                written += 1


def _with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # ru_maxrss is KiB on Linux


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="gw_bench_"))
    path = work / "pbb_1m.csv"
    changed = work / "pbb_1m_changed.csv"
    t = time.perf_counter()
    generate(path, args.rows)
    generate(changed, args.rows, amount_delta=500)
    print(f"generated {args.rows:,} rows, {path.stat().st_size / 2**20:.0f} MiB, "
          f"in {time.perf_counter() - t:.1f} s: {path}", file=sys.stderr)

    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    results = []
    try:
        # command_timeout as the CLI sets it (5 s): the importer must not depend on it being longer.
        conn = await asyncpg.connect(_with_dbname(args.database_url, name), command_timeout=5)
        try:
            await migrate(conn)
            await conn.execute("CREATE UNLOGGED TABLE ref_copy (" +
                               ", ".join(f"{c} text" for c in PBB_COLUMNS) + ")")
            await conn.execute("CHECKPOINT")
            t = time.perf_counter()
            status = await conn.copy_to_table("ref_copy", source=str(path), format="csv", header=True,
                                              timeout=3600)
            reference = time.perf_counter() - t
            assert int(status.split()[-1]) == args.rows, status
            results.append(("reference COPY (text, no index)", args.rows, reference, peak_rss_mib()))
            await conn.execute("DROP TABLE ref_copy")
            await conn.execute("CHECKPOINT")

            for label, source, expect in (("import_file (fresh)", path, "loaded"),
                                          ("import_file (re-import, same)", path, "updated"),
                                          ("import_file (re-import, changed)", changed, "updated")):
                err = io.StringIO()
                t = time.perf_counter()
                report = await import_file(conn, "pbb", str(source), strict=False, region_code="3275", err=err)
                seconds = time.perf_counter() - t
                got = report.loaded if expect == "loaded" else report.updated
                if got != args.rows or report.invalid or report.conflicts:
                    print(err.getvalue()[-2000:], file=sys.stderr)
                    raise SystemExit(f"{label}: unexpected report {report}")
                results.append((label, args.rows, seconds, peak_rss_mib()))
                await conn.execute("CHECKPOINT")
            count = await conn.fetchval("SELECT count(*) FROM bills")
            assert count == args.rows, count
            assert await conn.fetchval("SELECT count(*) FROM bills WHERE updated_at > imported_at") == args.rows
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if args.keep_file:
            print(f"kept {path} and {changed}", file=sys.stderr)
        else:
            path.unlink()
            changed.unlink()
            work.rmdir()

    reference = results[0][2]
    print(f"{'step':<36} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'x ref':>6} {'peak RSS MiB':>13}")
    for label, rows, seconds, rss in results:
        print(f"{label:<36} {rows:>10,} {seconds:>8.2f} {rows / seconds:>10,.0f} {seconds / reference:>6.1f} "
              f"{rss:>13.0f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("GATEWAY_BENCH_DATABASE_URL", DEFAULT_URL),
                        help="a server where the benchmark may create and drop a database")
    parser.add_argument("--keep-file", action="store_true", help="keep the generated CSV")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
