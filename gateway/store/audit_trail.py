"""Reading the audit log (spec/operations.md "Records kept"): newest first, filtered, paged by id."""
from __future__ import annotations

import datetime

import asyncpg

PAGE = 100


async def audit_entries(conn: asyncpg.Connection, *, actor: str | None, action: str | None,
                        day: datetime.date | None, tz_name: str, before: int | None) -> list[asyncpg.Record]:
    """Audit rows, newest first: ``actor`` exactly, ``action`` as a prefix (``settlement`` finds every
    settlement action), ``day`` a local date of the region's time zone ``tz_name``; ``before`` an id."""
    return await conn.fetch(
        "SELECT id, at, actor, action, target, detail::text AS detail, source FROM audit_log"
        " WHERE ($1::text IS NULL OR actor = $1)"
        " AND ($2::text IS NULL OR left(action, length($2)) = $2)"
        " AND ($3::date IS NULL OR (at >= ($3::date::timestamp AT TIME ZONE $4)"
        "      AND at < (($3::date + 1)::timestamp AT TIME ZONE $4)))"
        " AND ($5::bigint IS NULL OR id < $5)"
        " ORDER BY id DESC LIMIT " + str(PAGE), actor, action, day, tz_name, before)
