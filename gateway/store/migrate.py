"""Numbered SQL migrations, applied in order under an advisory lock.

Safe to run from several processes at once: the session-level advisory lock makes the second wait for the
first, and then find nothing left to do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# An arbitrary constant naming "the migration lock" of this schema.
MIGRATION_LOCK_ID = 0x47_57_4D_49_47  # "GWMIG"

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    folder = resources.files("gateway.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    assert versions == list(range(1, len(found) + 1)), f"migrations must be numbered 1..n without gaps: {versions}"
    return found


async def current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")


def latest_version() -> int:
    return available()[-1].version


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every migration not yet applied; returns those applied by this call."""
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )
            applied.append(migration)
        if await conn.fetchval("SELECT to_regproc('gw_grant_runtime') IS NOT NULL"):
            # The runtime role's privileges, re-applied so that every table of every migration is covered.
            await conn.execute("SELECT gw_grant_runtime()")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied
