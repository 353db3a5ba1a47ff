"""The whole path: pgbench beside `gateway serve` (ISO 8583 and JSON/HTTP), its CPU, memory and tail latency.

    .venv/bin/python bench/whole_path.py [--bills 200000] [--seconds 20] [--json FILE] [--profile FILE]

One run, two scratch databases on one server (the gateway's, migrated and seeded through the bill importer,
and pgbench's). In order: pgbench TPC-B-like and select-only at the generator's concurrency; `gateway
serve` with its default settings (only the database, the ports and bank 110 from 127.0.0.1 with an HTTP
secret are configured); closed-loop phases driven by gateway.banksim's load generator in
--generator-processes processes: ISO inquiry, ISO payment (inquiry + payment), ISO payment + reversal,
HTTP payment (GET inquiry + signed POST); an open-loop ISO payment phase at half the measured payment rate;
the memory of idle signed-on ISO connections (a restart with the connection limits raised to fit); and the
check that every approved payment is stored exactly once and money is conserved. Prints one table and
writes it as JSON with --json. bench/README.md describes the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _whole_path_load as gen  # noqa: E402
import _whole_path_sys as measure  # noqa: E402
from _scratch import psql, with_db  # noqa: E402

from gateway.banksim.load import percentiles  # noqa: E402
from tests.helpers.gateway import Gateway, bank_toml, free_port  # noqa: E402

BANK, SECRET = "110", "whole-path-secret"


def code_version() -> str:
    """The commit measured, and whether gateway/ differs from it (git, read only)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "gateway")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in gateway/" if dirty else "")


def start_gateway(url: str, work: Path, name: str, workers: int | None, extra: str = "") -> Gateway:
    port, http_port = free_port(), free_port()
    config = work / f"{name}.toml"
    server = f"[server]\nworkers = {workers}\n" if workers else ""
    config.write_text(f'{server}[state]\ndir = "{work}/state"\n[proof]\nkey_dir = "{work}/keys"\n'
                      f'[iso8583]\nlisten = "127.0.0.1:{port}"\n{extra}'
                      f'[http]\nlisten = "127.0.0.1:{http_port}"\npublic_url = "http://127.0.0.1:{http_port}"\n'
                      + bank_toml(BANK, SECRET))
    gw = Gateway(db_url=url, config_path=config, port=port, log_path=work / f"{name}.log", http_port=http_port)
    gw.start()
    # With [server] workers a supervisor starts N processes sharing the ports: wait for all of them, or the
    # first phase's connections would all go to the first one ready.
    deadline = time.monotonic() + 60
    while True:
        expected, ready = 1, 0
        for entry in gw.log().splitlines():
            if '"supervisor starting workers"' in entry:
                expected = json.loads(entry)["workers"]
            ready += '"gateway ready"' in entry
        if ready >= expected:
            return gw
        if time.monotonic() > deadline:
            raise RuntimeError("gateway workers did not all become ready:\n" + gw.log()[-3000:])
        time.sleep(0.1)


class Phases:
    """Runs one phase in the generator processes and measures the gateway's process tree around it."""

    def __init__(self, args: argparse.Namespace, pool, gw: Gateway, work: Path, url: str, payable: list):
        self.args, self.pool, self.gw, self.work, self.url = args, pool, gw, work, url
        self.spare = list(payable)  # payable bills no phase has used yet
        self.records: list[Path] = []
        self.profile: dict = {}
        self.postmaster = measure.postmaster_pid(args.database_url)

    def run(self, name: str, fn, *, paying: int = 0, profile: bool = False, **spec) -> dict:
        """``paying``: how many paying phases remain, this one included (it takes its share of the bills)."""
        a, procs = self.args, self.args.generator_processes
        # What autovacuum would do between phases (the CI server here runs without it): fresh statistics, and
        # the plans cached on the gateway's connections replanned. Without it, payments and active_payments
        # keep the estimates of their first plans and every inquiry may scan them whole.
        psql(self.url, "ANALYZE")
        bills = self.spare[: len(self.spare) // paying] if paying else []
        del self.spare[: len(bills)]
        start_at = time.time() + 2.0
        specs = []
        for i in range(procs):
            record = self.work / f"record-{name.replace(' ', '_')}-{i}.csv"
            self.records.append(record)
            specs.append({"host": "127.0.0.1", "port": self.gw.port, "url": self.gw.http_url, "bank": BANK,
                          "secret": SECRET, "seconds": a.seconds, "start_at": start_at, "seed": i + 1,
                          "connections": a.connections // procs, "concurrency": a.connections * a.in_flight // procs,
                          "bills": bills[i::procs], "record": str(record), "offset": i / procs,
                          "index": i, "processes": procs, **spec})
        waiting = self.pool.map_async(fn, specs, chunksize=1)
        time.sleep(max(0.0, start_at - time.time()))
        spy = self._spy() if profile else None
        before = measure.sample(self.gw.proc.pid, self.postmaster)
        parts = waiting.get()
        used = {k: v - before[k] for k, v in measure.sample(self.gw.proc.pid, self.postmaster).items()}
        cpu, wait = used["gateway"], used["gateway_runqueue"]
        # Cores busy over the phase: the gateway, PostgreSQL, the load generator, and anything else.
        cores = {k: round(used[k] / used["wall"], 2) for k in ("gateway", "postgres", "generators", "machine")}
        cores["other"] = round(cores["machine"] - cores["gateway"] - cores["postgres"] - cores["generators"], 2)
        if spy is not None:
            spy.wait()
            raw = Path(self.args.profile)
            self.profile = {"top": measure.top_frames(raw), "categories": measure.categories(raw)}
        for part in parts:
            self.spare += part["unused"]
        out = merge(parts)
        out.update(phase=name, gateway_cpu_s=round(cpu, 2), cores_busy=cores,
                   cpu_us_per_request=round(cpu * 1e6 / max(1, out["requests"])),
                   runqueue_us_per_request=round(wait * 1e6 / max(1, out["requests"])),
                   postgres_cpu_us_per_request=round(used["postgres"] * 1e6 / max(1, out["requests"])),
                   memory=measure.tree_memory_kib(self.gw.proc.pid),
                   ran_out_of_bills=bool(paying) and not all(p["unused"] for p in parts))
        print(line(out), flush=True)
        if out["ran_out_of_bills"]:
            print("  warning: the phase ran out of bills and ended early (use more --bills)", flush=True)
        if out["generator_late_s"] > 0.2:
            print(f"  warning: a generator process started {out['generator_late_s']} s late", flush=True)
        return out

    def _spy(self) -> subprocess.Popen:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        return subprocess.Popen([exe, "record", "--pid", str(self.gw.proc.pid), "--subprocesses", "--nonblocking",
                                 "--duration", str(min(10, self.args.seconds)), "--rate", "250", "--format", "raw",
                                 "-o", self.args.profile], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def merge(parts: list[dict]) -> dict:
    elapsed = max(p["elapsed_s"] for p in parts)
    ops: dict[str, dict] = {}
    for op in sorted({op for p in parts for op in p["latencies_ms"]}):
        values = [v for p in parts for v in p["latencies_ms"].get(op, [])]
        codes: dict[str, int] = {}
        for p in parts:
            for rc, n in p["codes"].get(op, {}).items():
                codes[rc] = codes.get(rc, 0) + n
        ops[op] = {"count": len(values), "per_s": round(len(values) / elapsed, 1), "codes": codes,
                   **percentiles(values)}
    out = {"elapsed_s": round(elapsed, 2), "requests": sum(o["count"] for o in ops.values()), "operations": ops,
           "errors": dict(sum((Counter(p["errors"]) for p in parts), Counter())),
           "generator_late_s": round(max(p["late_s"] for p in parts), 3)}
    if "from_schedule_ms" in parts[0]:
        out["scheduled"] = sum(p["scheduled"] for p in parts)
        out["from_schedule"] = percentiles([v for p in parts for v in p["from_schedule_ms"]])
        out["start_lag"] = percentiles([v for p in parts for v in p["lag_ms"]])
    return out


def line(p: dict) -> str:
    ops = "; ".join(f"{op} {o['per_s']:.0f}/s p50/p95/p99 {o['p50_ms']:.1f}/{o['p95_ms']:.1f}/{o['p99_ms']:.1f} ms"
                    f" RC {o['codes']}" for op, o in p["operations"].items())
    return (f"{p['phase']:<22} {ops}; gateway CPU {p['cpu_us_per_request']} µs/request"
            f" (+{p['runqueue_us_per_request']} µs waiting for a core), PostgreSQL {p['postgres_cpu_us_per_request']}"
            " µs/request; cores busy: "
            + ", ".join(f"{k} {v}" for k, v in p["cores_busy"].items()) + ","
            f" RSS {p['memory']['rss_kib'] // 1024} MiB" + (f"; errors {p['errors']}" if p["errors"] else ""))


async def idle_connections(gw: Gateway, count: int) -> dict:
    """RSS of the gateway's tree before and after ``count`` idle, signed-on ISO connections."""
    async with gw.client() as warm:  # first use of the listener, the codec, the log
        await warm.request(warm.network("001"))
    await asyncio.sleep(2)
    before = measure.tree_memory_kib(gw.proc.pid)
    clients = [gw.client() for _ in range(count)]
    for i in range(0, count, 100):
        batch = clients[i:i + 100]
        await asyncio.gather(*(c.connect() for c in batch))
        answers = await asyncio.gather(*(c.request(c.network("001")) for c in batch))
        if any(a.get("39") != "00" for a in answers):
            raise RuntimeError("sign-on refused while opening idle connections")
    await asyncio.sleep(3)
    after = measure.tree_memory_kib(gw.proc.pid)
    await asyncio.gather(*(c.close() for c in clients))
    return {"connections": count, "before": before, "after": after,
            "rss_kib_per_connection": round((after["rss_kib"] - before["rss_kib"]) / count, 1),
            "pss_kib_per_connection": round((after["pss_kib"] - before["pss_kib"]) / count, 1)}


def figures(r: dict) -> dict:
    """The issue's figures from the phases: rates, ratios, CPU per request, tail latency, memory, check."""
    ph, pg = {p["phase"]: p for p in r["phases"]}, r["pgbench"]
    inq, pay = ph["ISO inquiry"], ph["ISO payment"]
    inquiries, payments = inq["operations"]["inquiry"]["per_s"], pay["operations"]["payment"]["per_s"]
    http = ph["HTTP payment"]["operations"]["payment"]["per_s"]
    paid, asked = pay["operations"]["payment"]["count"], pay["operations"]["inquiry"]["count"]
    return {
        "pgbench_tpcb_tps": round(pg["tpcb"]["tps"]), "pgbench_select_tps": round(pg["select"]["tps"]),
        "iso_inquiries_per_s": inquiries, "iso_payments_per_s": payments, "http_payments_per_s": http,
        "iso_payments_per_tpcb_tps": round(payments / pg["tpcb"]["tps"], 3),
        "iso_inquiries_per_select_tps": round(inquiries / pg["select"]["tps"], 3),
        "http_per_iso_payments": round(http / payments, 2),
        "cpu_us_per_inquiry": inq["cpu_us_per_request"],
        # A payment phase's operation is an inquiry and then the payment: both counts, and the payment alone
        # (less the inquiry phase's CPU per inquiry).
        "cpu_us_per_payment_with_inquiry": round(pay["gateway_cpu_s"] * 1e6 / max(1, paid)),
        "cpu_us_per_payment_alone": round((pay["gateway_cpu_s"] * 1e6 - asked * inq["cpu_us_per_request"]) / max(1, paid)),
        "half_rate_payments_per_s": r["open_loop"]["rate_per_s"],
        "half_rate_p99_ms": r["open_loop"]["from_schedule"]["p99_ms"],
        "idle_connection_kib": r["idle"]["rss_kib_per_connection"], "check_ok": r["check"]["ok"]}


def render(r: dict) -> str:
    f, pg, ol, idle, chk = r["figures"], r["pgbench"], r["open_loop"], r["idle"], r["check"]
    out = [f"{'phase':<22} {'op':<9} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  {'CPU µs/req':>10}  RCs"]
    for name, t in (("pgbench TPC-B-like", pg["tpcb"]), ("pgbench select-only", pg["select"])):
        out.append(f"{name:<22} {'':<9} {t['tps']:>7.0f} {'avg':>7} {t['latency_avg_ms']:>7.1f}")
    for p in r["phases"]:
        for op, o in p["operations"].items():
            out.append(f"{p['phase']:<22} {op:<9} {o['per_s']:>7.0f} {o['p50_ms']:>7.1f} {o['p95_ms']:>7.1f}"
                       f" {o['p99_ms']:>7.1f}  {p['cpu_us_per_request']:>10}  {o['codes']}")
    s = ol["from_schedule"]
    rows = [("ISO payments/s ÷ TPC-B tps",
             f"{f['iso_payments_per_s']:.0f} / {f['pgbench_tpcb_tps']} = {f['iso_payments_per_tpcb_tps']}"),
            ("ISO inquiries/s ÷ select-only tps",
             f"{f['iso_inquiries_per_s']:.0f} / {f['pgbench_select_tps']} = {f['iso_inquiries_per_select_tps']}"),
            ("HTTP payments/s ÷ ISO payments/s",
             f"{f['http_payments_per_s']:.0f} / {f['iso_payments_per_s']:.0f} = {f['http_per_iso_payments']}"),
            ("gateway CPU per inquiry", f"{f['cpu_us_per_inquiry']} µs"),
            ("gateway CPU per payment", f"{f['cpu_us_per_payment_with_inquiry']} µs with its inquiry,"
             f" {f['cpu_us_per_payment_alone']} µs alone"),
            (f"open loop, {ol['rate_per_s']:.0f} payments/s", f"from schedule p50/p95/p99 {s['p50_ms']:.1f}/"
             f"{s['p95_ms']:.1f}/{s['p99_ms']:.1f} ms (generator start lag p99 {ol['start_lag']['p99_ms']:.1f} ms)"),
            ("gateway processes, memory", f"{r['phases'][0]['memory']['processes']}, RSS"
             f" {r['phases'][-1]['memory']['rss_kib'] // 1024} MiB (PSS {r['phases'][-1]['memory']['pss_kib'] // 1024} MiB)"
             " after the HTTP phase"),
            ("memory per idle ISO connection", f"{idle['rss_kib_per_connection']} KiB RSS, {idle['pss_kib_per_connection']}"
             f" KiB PSS ({idle['connections']} connections: {idle['before']['rss_kib'] // 1024} →"
             f" {idle['after']['rss_kib'] // 1024} MiB RSS)"),
            ("check", f"ok: {chk['approved_payments']} approved payments, {chk['approved_reversals']} reversals"
             if chk["ok"] else f"FAILED {chk['problems']} {chk['conservation']}")]
    out += [""] + [f"{k:<36} {v}" for k, v in rows]
    if r.get("profile"):
        title = "open-loop" if r["profile_open"] else "ISO payment"
        out += ["", f"py-spy, {title} phase: " + ", ".join(f"{k} {v}%" for k, v in r["profile"]["categories"].items())]
        out += [f"  {t['percent']:5.1f}%  {t['frame']}" for t in r["profile"]["top"]]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--bills", type=int, default=200_000, help="PBB bills imported (about 44%% payable)")
    ap.add_argument("--seconds", type=int, default=20, help="each phase and each pgbench run")
    ap.add_argument("--connections", type=int, default=16, help="ISO connections in all")
    ap.add_argument("--in-flight", type=int, default=4, help="requests in flight per connection (workers)")
    ap.add_argument("--generator-processes", type=int, default=2)
    ap.add_argument("--pgbench-scale", type=int, default=10)
    ap.add_argument("--idle-connections", type=int, default=2000)
    ap.add_argument("--workers", type=int, help="[server] workers for gateway serve (default: its default)")
    ap.add_argument("--open-rate", type=float, metavar="PER_S",
                    help="payments/s of the open-loop phase (default: half the ISO payment phase's rate)")
    ap.add_argument("--profile", metavar="FILE", help="py-spy the ISO payment phase (raw stacks to FILE)")
    ap.add_argument("--profile-open", action="store_true",
                    help="with --profile: py-spy the open-loop phase instead, where the gateway has a core to itself"
                         " (samples are then CPU time, not time waiting for a core)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run still drops its databases
    tag = uuid.uuid4().hex[:8]
    name, pgb = f"gw_wholepath_{tag}", f"gw_wholepath_{tag}_pgbench"
    url = with_db(args.database_url, name)
    work = Path(tempfile.mkdtemp(prefix="gw-wholepath-"))
    gw: Gateway | None = None
    pool = multiprocessing.get_context("spawn").Pool(args.generator_processes)
    keep = True  # the work directory (gateway logs, records), unless the run ends cleanly
    r: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("json", "database_url")}}
    r["settings"]["code"] = code_version()
    try:
        for db in (name, pgb):
            psql(args.database_url, f'CREATE DATABASE "{db}"')
        pool.map(gen.ready, range(args.generator_processes), chunksize=1)
        t0 = time.monotonic()
        payable = asyncio.run(measure.seed(url, args.bills, work))
        print(f"seeded {args.bills} bills ({len(payable)} payable) in {time.monotonic() - t0:.1f} s", flush=True)
        clients = args.connections * args.in_flight
        r["pgbench"] = measure.pgbench(with_db(args.database_url, pgb), clients, args.seconds, args.pgbench_scale)
        print(f"pgbench at {clients} clients: TPC-B-like {r['pgbench']['tpcb']['tps']:.0f} tps,"
              f" select-only {r['pgbench']['select']['tps']:.0f} tps", flush=True)
        psql(args.database_url, f'DROP DATABASE "{pgb}"')
        gw = start_gateway(url, work, "gateway", args.workers)
        ph = Phases(args, pool, gw, work, url, payable)
        # Not reported: a few thousand payments first, as a gateway in service has (with the statistics
        # taken on empty payment tables, the planner would pick plans that scan them whole).
        ph.run("warm-up", gen.iso_closed, paying=5, mix={"payment": 1}, seconds=5)
        r["phases"] = [
            ph.run("ISO inquiry", gen.iso_closed, mix={"inquiry": 1}, inquiry_bills=list(ph.spare)),
            ph.run("ISO payment", gen.iso_closed, paying=4, mix={"payment": 1},
                   profile=bool(args.profile) and not args.profile_open),
            ph.run("ISO payment+reversal", gen.iso_closed, paying=3, mix={"payment": 1, "reversal": 1}),
            ph.run("HTTP payment", gen.http_closed, paying=2),
        ]
        # Half the payment phase's rate, or a fixed one: the host's speed may drift between the two phases,
        # and a fixed rate keeps the tail of two runs comparable.
        rate = args.open_rate or r["phases"][1]["operations"]["payment"]["per_s"] / 2
        r["open_loop"] = ph.run("ISO payment open loop", gen.iso_open, paying=1,
                                rate=rate / args.generator_processes, profile=bool(args.profile_open))
        r["open_loop"]["rate_per_s"] = rate
        r["profile"], r["profile_open"] = ph.profile, args.profile_open
        gw.stop()
        limit = args.idle_connections + 16
        gw = start_gateway(url, work, "gateway-idle", args.workers,
                           f"max_connections = {limit}\nmax_connections_per_address = {limit}\n")
        r["idle"] = asyncio.run(idle_connections(gw, args.idle_connections))
        gw.stop()
        r["check"] = asyncio.run(measure.check(url, ph.records))
        r["figures"] = figures(r)
        print(render(r))
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2, default=str) + "\n")
        keep = not r["check"]["ok"] or any(p["errors"] for p in r["phases"] + [r["open_loop"]])
    finally:
        pool.terminate()
        if gw is not None:
            gw.stop(signal.SIGTERM)
        for db in (name, pgb):
            psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if keep:
            print(f"kept the gateway's configuration, log and the generators' records in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if r["check"]["ok"] else 1)


if __name__ == "__main__":
    main()
