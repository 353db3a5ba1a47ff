"""Restore drill: prove that a backup of the gateway's database restores into a working gateway.

    /opt/gateway/bin/python deploy/restore_drill.py --source-url postgresql://owner@db/gateway \\
        --config /etc/gateway/gateway.toml [--date 2026-11-23 ...] [--replay exchanges.json]

1. `pg_dump --format=custom` of the source database (run it against a standby or at a quiet hour: it reads
   one consistent snapshot and locks nothing the gateway writes);
2. a new, empty PostgreSQL cluster (the embedded one, under a temporary directory), the runtime role the
   schema grants to (`gateway_runtime`: roles belong to a cluster, not to a dump), then `pg_restore`;
3. `gateway db migrate` on the restore (nothing to do when the versions match: it proves they do);
4. `gateway settle report DATE` on the source and on the restore, for every date given (default: every date
   with payments): byte for byte the same;
5. `gateway serve` on the restore (the configuration's banks and proof keys, free local ports), and with
   `--replay` the ISO 8583 exchanges of a JSON file (`[{"request": {fields}, "answer": {fields}}]`, what a
   bank recorded before the backup) sent again from this host: each must be answered with the fields it got
   then (a repeat is answered as stored, spec/domain.md invariant 2). The bank must be allowed from
   127.0.0.1 and have no MAC key in the configuration given.

Exit 0 when every step holds, 1 with the differences otherwise. The work directory (dump, cluster, logs) is
removed unless `--keep`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from gateway.banksim.client import IsoClient
from gateway.store.db import RUNTIME_ROLE
from gateway.store.embedded import EmbeddedPostgres
from gateway.store.pg_host import find_bindir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway(*args: str, url: str, config: str | None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gateway", *args] + (["--config", config] if config else [])
    return subprocess.run(command, env=_database_env(url, env), capture_output=True, timeout=300)


def _database_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a gateway command on ``url`` alone: an owner URL inherited from the operator's
    environment (GATEWAY_DATABASE_MIGRATE_URL) would send its migrations and reads to another database."""
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_MIGRATE_URL"}
    return {**env, **(extra or {}), "GATEWAY_DATABASE_URL": url, "GATEWAY_DATABASE_MIGRATE_URL": url}


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    return found or str(find_bindir() / name)


async def dates_with_payments(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [str(r[0]) for r in await conn.fetch("SELECT DISTINCT business_date FROM payments ORDER BY 1")]
    finally:
        await conn.close()


async def create_runtime_role(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", RUNTIME_ROLE):
            await conn.execute(f"CREATE ROLE {RUNTIME_ROLE} NOLOGIN")
        await conn.execute(f"GRANT {RUNTIME_ROLE} TO CURRENT_USER")
    finally:
        await conn.close()


async def replay(port: int, exchanges: list[dict], problems: list[str]) -> int:
    """Send each recorded request again; its answer must be the recorded one."""
    same = 0
    for n, exchange in enumerate(exchanges, start=1):
        request = {k: v for k, v in exchange["request"].items() if not k.startswith("_")}
        expected = {k: v for k, v in exchange["answer"].items() if not k.startswith("_")}
        async with IsoClient("127.0.0.1", port, bank=request.get("32", "110"), timeout_s=10) as client:
            answer = {k: v for k, v in (await client.request(dict(request))).items() if not k.startswith("_")}
        if answer == expected:
            same += 1
        else:
            changed = sorted(k for k in set(answer) | set(expected) if answer.get(k) != expected.get(k))
            problems.append(f"replay {n} (STAN {request.get('11')}): answered differently in fields {changed}")
    return same


def serve(url: str, config: str | None, work: Path) -> tuple[subprocess.Popen, int, int]:
    iso_port, http_port = free_port(), free_port()
    env = _database_env(url, {"GATEWAY_STATE_DIR": str(work / "state"), "GATEWAY_SERVER_WORKERS": "1",
                              "GATEWAY_ISO8583_LISTEN": f"127.0.0.1:{iso_port}",
                              "GATEWAY_HTTP_LISTEN": f"127.0.0.1:{http_port}"})
    log = open(work / "gateway.log", "wb")
    command = [sys.executable, "-m", "gateway", "serve"] + (["--config", config] if config else [])
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway serve on the restore exited {proc.returncode}: see {work / 'gateway.log'}")
        try:
            socket.create_connection(("127.0.0.1", iso_port), timeout=0.2).close()
            return proc, iso_port, http_port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gateway serve on the restore did not start listening")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source-url", required=True, help="the database to back up (its owner role)")
    ap.add_argument("--config", help="the gateway's configuration (banks, proof keys) for the restored gateway")
    ap.add_argument("--date", action="append", default=[], help="a business date to compare (repeatable)")
    ap.add_argument("--replay", help="JSON file of recorded ISO 8583 exchanges to send again")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-restore-drill-"))
    work.chmod(0o711)  # run as root, the cluster runs as 'postgres', which must reach its directory
    problems: list[str] = []
    cluster = EmbeddedPostgres(work / "cluster", port=free_port())
    server = None
    try:
        dump = work / "gateway.dump"
        subprocess.run([pg_tool("pg_dump"), "--format=custom", "--file", str(dump), args.source_url], check=True)
        print(f"1. backup: {dump.stat().st_size} bytes")
        restored = cluster.start()
        asyncio.run(create_runtime_role(restored))
        subprocess.run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", restored, str(dump)],
                       check=True)
        print(f"2. restored into a new cluster ({cluster.pgdata})")
        migrated = gateway("db", "migrate", url=restored, config=args.config)
        if migrated.returncode != 0:
            problems.append(f"db migrate on the restore failed: {migrated.stderr.decode()[-500:]}")
        print("3. schema current on the restore" if migrated.returncode == 0 else "3. db migrate FAILED")
        dates = args.date or asyncio.run(dates_with_payments(args.source_url))
        for day in dates:
            before = gateway("settle", "report", day, url=args.source_url, config=args.config)
            after = gateway("settle", "report", day, url=restored, config=args.config)
            if before.returncode != 0 or before.stdout != after.stdout:
                problems.append(f"settlement report of {day} differs (source exit {before.returncode}, "
                                f"restore exit {after.returncode})")
        print(f"4. settlement reports compared for {len(dates)} date(s): {', '.join(dates) or 'none'}")
        server, iso_port, _ = serve(restored, args.config, work)
        print(f"5. gateway serving on the restore (ISO 8583 127.0.0.1:{iso_port})")
        if args.replay:
            exchanges = json.loads(Path(args.replay).read_text())
            same = asyncio.run(replay(iso_port, exchanges, problems))
            print(f"   replayed {len(exchanges)} recorded exchange(s): {same} answered as stored")
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        problems.append(f"drill stopped: {exc}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    print("restore drill: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
