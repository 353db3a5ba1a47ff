"""ISO 8583 throughput and latency (``gateway bank-sim load``) beside pgbench on the same database.

    .venv/bin/python bench/iso_load.py [--database-url URL] [--objects 20000] [--seconds 20] [--concurrency 32]

One run, one scratch database: seeds the demo region, runs pgbench's TPC-B-like script as the reference,
then starts ``gateway serve`` and drives it with ``gateway bank-sim load`` (inquiry only, then payments),
and prints the figures with their ratio to pgbench. Drops the scratch database afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _scratch import free_port, psql, with_db  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def pgbench(url: str, clients: int, seconds: int) -> dict:
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    subprocess.run([exe, "-i", "-q", "-s", "10", url], check=True, capture_output=True)
    out = subprocess.run([exe, "-c", str(clients), "-j", "2", "-T", str(seconds), "-b", "tpcb-like", "-r", url],
                         check=True, capture_output=True, text=True).stdout
    return {"tps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
            "latency_ms": float(re.search(r"latency average = ([\d.]+) ms", out).group(1))}


def load(config: Path, env: dict, port: int, seconds: int, concurrency: int, mix: str, tax: str) -> dict:
    out = subprocess.run(
        [PY, "-m", "gateway", "bank-sim", "load", "--config", str(config), "--port", str(port), "--duration",
         str(seconds), "--concurrency", str(concurrency), "--connections", "8", "--mix", mix, "--tax", tax,
         "--bills", "200000", "--json"], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--objects", type=int, default=20000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    name = f"gw_isobench_{uuid.uuid4().hex[:8]}"
    psql(args.database_url, f'CREATE DATABASE "{name}"')
    url = with_db(args.database_url, name)
    work = Path(tempfile.mkdtemp(prefix="gw-isobench-"))
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    port = free_port()
    config = work / "gw.toml"
    config.write_text(f'[state]\ndir = "{work}"\n[proof]\nkey_dir = "{work}/keys"\n[iso8583]\nlisten = "127.0.0.1:{port}"\n'
                      f'[database]\npool_max = 40\n[[banks]]\ncode = "110"\nallow = ["127.0.0.1/32"]\n')
    server = None
    try:
        subprocess.run([PY, "-m", "gateway", "demo", "seed", "--objects", str(args.objects), "--config", str(config)],
                       check=True, capture_output=True, env=env)
        reference = pgbench(url, args.concurrency, args.seconds)
        server = subprocess.Popen([PY, "-m", "gateway", "serve", "--config", str(config)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "wb"))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("gateway did not start: " + (work / "serve.log").read_text())
                time.sleep(0.1)
        runs = {
            "inquiry (PBB)": load(config, env, port, args.seconds, args.concurrency, "inquiry=1", "pbb"),
            "inquiry+payment (PBB)": load(config, env, port, args.seconds, args.concurrency, "payment=1", "pbb"),
        }
        rss = subprocess.run(["ps", "-o", "rss=", "-p", str(server.pid)], capture_output=True, text=True).stdout
        print(f"pgbench tpcb-like: {reference['tps']:.0f} tps, latency avg {reference['latency_ms']:.1f} ms "
              f"(clients {args.concurrency}, {args.seconds} s)")
        for label, r in runs.items():
            for op, o in r["operations"].items():
                rate = o["count"] / r["elapsed_s"]
                print(f"{label:<22} {op:<8} {rate:8.0f}/s  ratio {rate / reference['tps']:.2f}  "
                      f"p50 {o['p50_ms']:.1f} p95 {o['p95_ms']:.1f} p99 {o['p99_ms']:.1f} ms  RC {o['codes']}")
        print(f"gateway RSS after the runs: {int(rss or 0) // 1024} MiB")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        psql(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
