"""The gateway's CPU per ISO inquiry beside the stack's floor, measured alternately on the same database.

    .venv/bin/python bench/stack_floor.py [--bills 40000] [--seconds 15] [--rounds 3] [--json FILE]

The floor (bench/_stack_floor_server.py) is the least an ISO 8583 inquiry costs on this stack: uvloop
streams, pyiso8583 with the gateway's field table, one pooled asyncpg read with the inquiry's own statement,
and nothing of the gateway's own (no checks, MAC, message log, recorder, logs or metrics). Each round runs
the same closed-loop inquiry phase (bench/whole_path.py's generator, 16 connections × 4 in flight) against
`gateway serve` (one worker unless --workers) and against the floor, in alternating order, and takes each server's CPU
(user + system, from /proc) and PostgreSQL's per inquiry. On a shared host that drifts between minutes, the
ratio within a round is the figure to read; bench/README.md says more.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _whole_path_load as gen  # noqa: E402
import _whole_path_sys as measure  # noqa: E402
from _scratch import free_port, psql, with_db  # noqa: E402
from whole_path import BANK, SECRET, code_version, merge, start_gateway  # noqa: E402


class Floor:
    """The floor server as a child process, with what a phase needs of a server: its PID and port."""

    def __init__(self, url: str, processes: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_stack_floor_server.py"),
                                      str(self.port), url, str(processes)], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout is None or self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor server did not start")

    def stop(self) -> None:
        pids = measure.tree(self.proc.pid)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        self.proc.wait(10)
        time.sleep(0.5)  # the forked ones, which are not this script's children


def phase(args: argparse.Namespace, pool, server, bills: list, postmaster: int | None, seconds: int) -> dict:
    """One closed-loop inquiry phase against ``server``: rate, latency, CPU per inquiry of it and of PostgreSQL."""
    procs = args.generator_processes
    start_at = time.time() + 2.0
    specs = [{"host": "127.0.0.1", "port": server.port, "bank": BANK, "secret": SECRET, "seconds": seconds,
              "start_at": start_at, "seed": i + 1, "connections": args.connections // procs,
              "concurrency": args.connections * args.in_flight // procs, "bills": [], "inquiry_bills": bills,
              "record": None, "index": i, "processes": procs, "mix": {"inquiry": 1}} for i in range(procs)]
    waiting = pool.map_async(gen.iso_closed, specs, chunksize=1)
    time.sleep(max(0.0, start_at - time.time()))
    before = measure.sample(server.proc.pid, postmaster)
    parts = waiting.get()
    used = {k: v - before[k] for k, v in measure.sample(server.proc.pid, postmaster).items()}
    out = merge(parts)
    n = max(1, out["requests"])
    op = out["operations"]["inquiry"]
    return {"per_s": op["per_s"], "p50_ms": op["p50_ms"], "p99_ms": op["p99_ms"], "codes": op["codes"],
            "errors": out["errors"], "cpu_us": round(used["gateway"] * 1e6 / n),
            "postgres_us": round(used["postgres"] * 1e6 / n),
            "machine_cores": round(used["machine"] / used["wall"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--bills", type=int, default=40_000, help="PBB bills imported (about 44%% payable)")
    ap.add_argument("--seconds", type=int, default=15, help="each measured phase")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (gateway, floor), the order alternating")
    ap.add_argument("--workers", type=int, default=1, help="processes of each server (gateway serve's [server] workers)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--generator-processes", type=int, default=2)
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name = f"gw_floor_{uuid.uuid4().hex[:8]}"
    url, pgb = with_db(args.database_url, name), with_db(args.database_url, name + "_pgbench")
    work = Path(tempfile.mkdtemp(prefix="gw-floor-"))
    pool = multiprocessing.get_context("spawn").Pool(args.generator_processes)
    rounds: list[dict] = []
    try:
        for db in (name, name + "_pgbench"):
            psql(args.database_url, f'CREATE DATABASE "{db}"')
        pool.map(gen.ready, range(args.generator_processes), chunksize=1)
        # The seed analyzes bills only. An ANALYZE of the still empty message_keys would make the planner trust
        # "empty" (PostgreSQL assumes 10 pages only for a table never analyzed), and the inquiry's cached plan
        # would then read the whole of message_keys, which every gateway inquiry grows (docs/performance.md).
        bills = asyncio.run(measure.seed(url, args.bills, work))
        postmaster = measure.postmaster_pid(args.database_url)
        # The yardstick at the generator's concurrency, as in bench/whole_path.py.
        select_tps = measure.pgbench(pgb, args.connections * args.in_flight, args.seconds, 10)["select"]["tps"]
        psql(args.database_url, f'DROP DATABASE "{name}_pgbench"')
        print(f"pgbench select-only: {select_tps:.0f} tps", flush=True)
        for r in range(args.rounds):
            result: dict = {}
            for which in (("gateway", "floor") if r % 2 == 0 else ("floor", "gateway")):
                server = (start_gateway(url, work, f"gateway-{r}", args.workers) if which == "gateway"
                          else Floor(url, args.workers))
                try:
                    phase(args, pool, server, bills, postmaster, 3)  # warm-up: connections, plans, caches
                    result[which] = phase(args, pool, server, bills, postmaster, args.seconds)
                finally:
                    server.stop()
                print(f"round {r + 1} {which:<8} {result[which]}", flush=True)
            result["cpu_ratio"] = round(result["gateway"]["cpu_us"] / result["floor"]["cpu_us"], 2)
            for which in ("gateway", "floor"):
                result[which]["per_select_tps"] = round(result[which]["per_s"] / select_tps, 3)
            rounds.append(result)
        summary = {"code": code_version(), "pgbench_select_tps": round(select_tps),
                   "settings": {k: v for k, v in vars(args).items() if k != "json"},
                   "rounds": rounds,
                   "median": {k: round(statistics.median(r[w][f] if w else r[k] for r in rounds), 2)
                              for k, w, f in (("gateway_cpu_us", "gateway", "cpu_us"),
                                              ("floor_cpu_us", "floor", "cpu_us"),
                                              ("gateway_per_s", "gateway", "per_s"), ("floor_per_s", "floor", "per_s"),
                                              ("cpu_ratio", None, None))}}
        print("\n" + render(summary))
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        pool.terminate()
        for db in (name, name + "_pgbench"):
            psql(args.database_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


def render(s: dict) -> str:
    out = [f"pgbench select-only at the same concurrency: {s['pgbench_select_tps']} tps",
           f"{'round':<6} {'server':<8} {'inquiries/s':>11} {'÷ select':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs/inq':>10}"
           f" {'PostgreSQL µs/inq':>17} {'cores busy':>10}"]
    for i, r in enumerate(s["rounds"], 1):
        for which in ("gateway", "floor"):
            p = r[which]
            out.append(f"{i:<6} {which:<8} {p['per_s']:>11.0f} {p['per_select_tps']:>8} {p['p50_ms']:>7.1f} {p['p99_ms']:>7.1f}"
                       f" {p['cpu_us']:>10} {p['postgres_us']:>17} {p['machine_cores']:>10}")
        out.append(f"{'':<6} gateway ÷ floor, CPU per inquiry: {r['cpu_ratio']}")
    m = s["median"]
    out.append(f"median: gateway {m['gateway_cpu_us']} µs, floor {m['floor_cpu_us']} µs per inquiry;"
               f" ratio {m['cpu_ratio']}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
