"""The measuring side of bench/whole_path.py: the gateway's process tree from /proc, pgbench, the seed, the
check of approved payments against the database, and a text summary of a py-spy profile."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_1m import generate  # noqa: E402  (bench/import_1m.py: the deterministic PBB-P2 CSV)

from gateway.bills.importer import import_file  # noqa: E402
from gateway.settlement.invariants import check_conservation  # noqa: E402
from gateway.store import bills as bill_store  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# -- the gateway's process tree --------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    """Fields 3… of /proc/PID/stat (after the command name, which may hold spaces and parentheses)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (worker processes, anything they start)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_times(root: int) -> tuple[float, float]:
    """(CPU seconds, run-queue seconds) of the tree. CPU: user + system of each live process plus that of its
    reaped children (cutime/cstime), so a worker that exits mid-phase still counts, and none twice.
    Run queue: time its live threads were ready to run but waited for a core (/proc/PID/task/*/schedstat)."""
    ticks, waited = 0, 0
    for pid in tree(root):
        try:
            ticks += sum(int(x) for x in _stat(pid)[11:15])  # utime stime cutime cstime
            for tid in os.listdir(f"/proc/{pid}/task"):
                waited += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except OSError:
            continue
    return ticks / TICK, waited / 1e9


def tree_memory_kib(root: int) -> dict[str, int]:
    """RSS and PSS summed over the tree (PSS shares pages between forked workers instead of counting them
    in each)."""
    rss = pss = 0
    for pid in tree(root):
        try:
            rss += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))
            pss += int(re.search(r"Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text()).group(1))
        except (OSError, AttributeError):
            pass
    return {"rss_kib": rss, "pss_kib": pss, "processes": len(tree(root))}


def postmaster_pid(url: str) -> int | None:
    """The PID of the PostgreSQL server behind ``url`` when it runs on this machine (its postmaster.pid)."""
    try:
        data = subprocess.run(["psql", url, "-qAtc", "SHOW data_directory"], capture_output=True, text=True).stdout
        return int((Path(data.strip()) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sample(gateway: int, postmaster: int | None) -> dict[str, float]:
    """Cumulative CPU seconds of the gateway's tree, of the PostgreSQL server's (every backend, this run's or
    not: exited ones through the postmaster's cutime), of this script with its generator processes, and of
    the whole machine (/proc/stat); the gateway's run-queue seconds; the wall clock."""
    gw, waited = tree_times(gateway)
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return {"gateway": gw, "postgres": tree_times(postmaster)[0] if postmaster else 0.0,
            "generators": tree_times(os.getpid())[0] - gw,  # the gateway is this script's child
            "machine": (sum(values) - values[3] - values[4]) / TICK, "gateway_runqueue": waited,
            "wall": time.monotonic()}


# -- pgbench ---------------------------------------------------------------------------------------------

def pgbench(url: str, clients: int, seconds: int, scale: int) -> dict:
    """TPC-B-like, then select-only, at ``clients`` clients (2 threads) for ``seconds`` each."""
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    subprocess.run([exe, "-i", "-q", "-s", str(scale), url], check=True, capture_output=True)
    out = {}
    for label, builtin in (("tpcb", "tpcb-like"), ("select", "select-only")):
        text = subprocess.run([exe, "-c", str(clients), "-j", "2", "-T", str(seconds), "-b", builtin, url],
                              check=True, capture_output=True, text=True).stdout
        out[label] = {"tps": float(re.search(r"tps = ([\d.]+)", text).group(1)),
                      "latency_avg_ms": float(re.search(r"latency average = ([\d.]+) ms", text).group(1))}
    return out


# -- the seed --------------------------------------------------------------------------------------------

async def seed(url: str, bills: int, work: Path) -> list[tuple[str, str]]:
    """Migrate, import ``bills`` PBB bills through the bill importer (bench/import_1m.py's CSV: five tax
    years per NOP, older years partly paid), and return the payable ones, shuffled."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        csv_path = work / "bills.csv"
        generate(csv_path, bills)
        with open(work / "import.log", "w") as err:
            await import_file(conn, "pbb", str(csv_path), strict=False, region_code="3275", err=err)
        csv_path.unlink()
        rows = await bill_store.payable_bills(conn, ["PBB"], bills)
        await conn.execute("ANALYZE bills")  # only bills: statistics of empty tables would say "empty" for good
    finally:
        await conn.close()
    payable = [("pbb", r["bill_key"]) for r in rows]
    random.Random(3275).shuffle(payable)
    return payable


# -- the check -------------------------------------------------------------------------------------------

async def check(url: str, records: list[Path]) -> dict:
    """Every approved payment the generators recorded exists once, for its bill, and stands or is reversed
    as recorded; no bill has two standing payments; money is conserved on every business date used."""
    paid: dict[str, str] = {}
    reversed_: set[str] = set()
    recorded_twice = 0
    for path in records:
        for line in path.read_text().splitlines() if path.exists() else []:
            kind, ntpd, _tax, bill, _stan, _f7 = line.split(",")
            if kind == "paid":
                recorded_twice += ntpd in paid
                paid[ntpd] = bill
            else:
                reversed_.add(ntpd)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT p.ntpd, b.bill_key, count(*) OVER (PARTITION BY p.ntpd) AS copies,"
            " EXISTS (SELECT 1 FROM reversals r WHERE r.payment_id = p.id) AS reversed,"
            " EXISTS (SELECT 1 FROM active_payments a WHERE a.payment_id = p.id) AS active"
            " FROM payments p JOIN bills b ON b.id = p.bill_id")
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT p.bill_id FROM payments p WHERE NOT EXISTS"
            " (SELECT 1 FROM reversals r WHERE r.payment_id = p.id) GROUP BY p.bill_id HAVING count(*) > 1) d")
        dates = [r[0] for r in await conn.fetch("SELECT DISTINCT business_date FROM payments ORDER BY 1")]
        mismatches = [str(m) for d in dates for m in await check_conservation(conn, d)]
    finally:
        await conn.close()
    db = {r["ntpd"]: r for r in rows}
    problems: Counter = Counter()
    for ntpd, bill in paid.items():
        row = db.get(ntpd)
        if row is None:
            problems["approved payment missing from the database"] += 1
            continue
        problems["approved payment stored more than once"] += row["copies"] > 1
        problems["approved payment stored for another bill"] += row["bill_key"] != bill
        if ntpd in reversed_:
            problems["approved reversal not stored"] += not row["reversed"]
        else:
            problems["standing payment not active"] += not row["active"]
            problems["payment reversed without an approved reversal"] += row["reversed"]
    problems["NTPD answered twice"] += recorded_twice
    problems["bills with two standing payments"] += doubled
    problems["conservation mismatches"] += len(mismatches)
    return {"approved_payments": len(paid), "approved_reversals": len(reversed_), "payments_in_db": len(db),
            "unrecorded_payments_in_db": len(set(db) - set(paid)), "business_dates": [str(d) for d in dates],
            "conservation": mismatches[:10], "problems": {k: v for k, v in problems.items() if v},
            "ok": not any(problems.values())}


# -- py-spy ----------------------------------------------------------------------------------------------

def top_frames(raw: Path, n: int = 15) -> list[dict]:
    """The ``n`` functions with the most self samples in py-spy's raw (collapsed stack) output, line numbers
    dropped so one function is one row."""
    self_samples: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1])
        leaf = "(no Python frame)" if leaf.startswith("process ") else leaf
        self_samples[leaf] += int(count)
        total += int(count)
    return [{"frame": frame, "samples": c, "percent": round(100 * c / total, 1)}
            for frame, c in self_samples.most_common(n)]


# Where a sample's time goes: the first of these met walking from the leaf frame up; a sample whose leaf is
# the loop's own run() is the event loop (uvloop's C code, and whatever C it calls back); the rest is the
# gateway's own Python. Without --native, time in C (asyncpg's Cython protocol, syscalls) counts for the
# Python frame that called it.
CATEGORIES = (("asyncpg (protocol, socket)", ("asyncpg/",)), ("logging (structlog)", ("structlog/", "gateway/logs.py")),
              ("JSON", ("json/",)), ("signing", ("gateway/proofs/signing.py", "cryptography/")),
              ("ISO 8583 codec", ("(iso8583/", "gateway/iso8583/spec.py", "gateway/iso8583/mac.py")),
              ("aiohttp", ("aiohttp/",)), ("stream writes", ("asyncio/streams.py",)))


def categories(raw: Path) -> dict[str, float]:
    """Percent of the non-idle samples in each of CATEGORIES, the event loop, and the gateway's own Python."""
    share: Counter = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[::-1]
        name = "event loop" if frames[0].startswith("Runner.run ") else next(
            (label for frame in frames for label, keys in CATEGORIES if any(k in frame for k in keys)), "other Python")
        share[name] += int(count or 0)
    total = sum(share.values()) or 1
    return {k: round(100 * v / total, 1) for k, v in share.most_common()}
