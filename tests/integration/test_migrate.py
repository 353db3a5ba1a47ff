"""Migrations: idempotent, and safe when several processes run them at once."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from gateway.store.migrate import current_version, latest_version, migrate

pytestmark = pytest.mark.integration


async def test_migrate_twice(empty_db_url):
    conn = await asyncpg.connect(empty_db_url)
    try:
        assert await current_version(conn) == 0
        first = await migrate(conn)
        assert [m.version for m in first] == list(range(1, latest_version() + 1))
        assert await migrate(conn) == []
        assert await current_version(conn) == latest_version()
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(empty_db_url):
    conns = [await asyncpg.connect(empty_db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, latest_version()]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == latest_version()
    finally:
        for c in conns:
            await c.close()


def test_cli_migrate_from_several_processes(empty_db_url):
    env = {**os.environ, "GATEWAY_DATABASE_URL": empty_db_url}
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "db", "migrate"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    messages = sorted(err.strip().splitlines()[-1] for _, err in outputs)
    assert messages == [f"applied {latest_version()} migration(s)", "schema is current", "schema is current"]


def test_cli_config_errors_exit_2(tmp_path):
    bad = tmp_path / "gw.toml"
    bad.write_text("[region]\ncutoff = \"24:61\"\n")
    run = subprocess.run([sys.executable, "-m", "gateway", "db", "migrate", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip() == f"gateway: configuration error: {bad}: [region] cutoff must be HH:MM: '24:61'"
    missing = subprocess.run([sys.executable, "-m", "gateway", "db", "migrate", "--config", str(tmp_path / "no.toml")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "configuration file not found" in missing.stderr
