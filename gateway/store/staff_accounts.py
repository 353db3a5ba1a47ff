"""Staff accounts' SQL (gateway.staff.accounts): users, bearer tokens, browser sessions, failed sign-ins
and the audit log. Secrets arrive here already hashed; nothing here knows a clear secret."""
from __future__ import annotations

import datetime
from typing import TypeAlias

import asyncpg

# A connection, or a pool (each call then runs on a connection of its own).
Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


# ------------------------------------------------------------------------------------------------- users

async def insert_user(conn: Executor, username: str, role: str, password_hash: str) -> int:
    """The new user's id; asyncpg.UniqueViolationError when the username is taken."""
    row = await conn.fetchrow("INSERT INTO staff_users (username, role, password_hash) VALUES ($1, $2, $3)"
                              " RETURNING id", username, role, password_hash)
    user_id: int = row["id"]
    return user_id


async def active_user(conn: Executor, username: str) -> asyncpg.Record | None:
    """(id, username, role) of the user unless unknown or disabled."""
    return await conn.fetchrow("SELECT id, username, role FROM staff_users WHERE username = $1"
                               " AND disabled_at IS NULL", username)


async def active_user_credentials(conn: Executor, username: str) -> asyncpg.Record | None:
    """(id, username, role, password_hash) of the user unless unknown or disabled."""
    return await conn.fetchrow("SELECT id, username, role, password_hash FROM staff_users WHERE username = $1"
                               " AND disabled_at IS NULL", username)


# ------------------------------------------------------------------------------------------------ tokens

async def insert_token(conn: Executor, token_hash: bytes, user_id: int) -> None:
    await conn.execute("INSERT INTO staff_tokens (token_hash, user_id) VALUES ($1, $2)", token_hash, user_id)


async def revoke_tokens(conn: Executor, user_id: int) -> int:
    """Revoke the user's live tokens; how many."""
    count: int = await conn.fetchval(
        "WITH t AS (UPDATE staff_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        " RETURNING 1) SELECT count(*) FROM t", user_id)
    return count


async def user_of_token(conn: Executor, token_hash: bytes) -> asyncpg.Record | None:
    """(id, username, role) of a live token's user unless disabled."""
    return await conn.fetchrow(
        "SELECT u.id, u.username, u.role FROM staff_tokens t JOIN staff_users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL", token_hash)


# ---------------------------------------------------------------------------------------------- sessions

async def revoke_sessions(conn: Executor, user_id: int) -> int:
    """Revoke the user's live sessions; how many."""
    count: int = await conn.fetchval(
        "WITH s AS (UPDATE staff_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
        " RETURNING 1) SELECT count(*) FROM s", user_id)
    return count


async def insert_session(conn: Executor, session_hash: bytes, user_id: int, csrf_hash: bytes,
                         ttl: datetime.timedelta) -> datetime.datetime:
    """A new session ending ``ttl`` from now (the database's clock); its expiry."""
    expires_at: datetime.datetime = await conn.fetchval(
        "INSERT INTO staff_sessions (session_hash, user_id, csrf_hash, expires_at) VALUES ($1, $2, $3, now() + $4::interval)"
        " RETURNING expires_at", session_hash, user_id, csrf_hash, ttl)
    return expires_at


async def revoke_session(conn: Executor, session_hash: bytes) -> bool:
    """End a live session; whether there was one."""
    status: str = await conn.execute("UPDATE staff_sessions SET revoked_at = now() WHERE session_hash = $1"
                                     " AND revoked_at IS NULL", session_hash)
    return status.endswith(" 1")


async def live_session(conn: Executor, session_hash: bytes) -> asyncpg.Record | None:
    """(session_id, id, username, role, csrf_hash) of an unexpired, unrevoked session of an enabled user."""
    return await conn.fetchrow(
        "SELECT s.id AS session_id, u.id, u.username, u.role, s.csrf_hash FROM staff_sessions s"
        " JOIN staff_users u ON u.id = s.user_id"
        " WHERE s.session_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND u.disabled_at IS NULL", session_hash)


async def extend_session(conn: Executor, session_id: int, max_ttl: datetime.timedelta,
                         idle: datetime.timedelta) -> None:
    """Move a live session's expiry to ``idle`` from now, never beyond ``max_ttl`` after it began."""
    await conn.execute(
        "UPDATE staff_sessions SET expires_at = least(created_at + $2::interval, now() + $3::interval)"
        " WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()", session_id, max_ttl, idle)


# ------------------------------------------------------------------------------------- failed sign-ins

async def signin_failure_horizon(conn: Executor, username: str, source: str, window: datetime.timedelta,
                                 per_user: int, per_address: int) -> asyncpg.Record:
    """``user_until``: the failure of ``username`` (within ``window``, since its last session began) that
    keeps its count at ``per_user``, or None below that; ``address_until`` likewise for ``source`` and
    ``per_address``; ``now``: the database's clock."""
    return await conn.fetchrow(
        "SELECT"
        " (SELECT f.at FROM signin_failures f WHERE f.username = $1 AND f.at > now() - $3::interval"
        "    AND f.at > (SELECT coalesce(max(s.created_at), '-infinity') FROM staff_sessions s"
        "                JOIN staff_users u ON u.id = s.user_id WHERE u.username = $1)"
        "  ORDER BY f.at DESC OFFSET $4 - 1 LIMIT 1) AS user_until,"
        " (SELECT f.at FROM signin_failures f WHERE f.source = $2 AND f.at > now() - $3::interval"
        "  ORDER BY f.at DESC OFFSET $5 - 1 LIMIT 1) AS address_until,"
        " now() AS now", username, source, window, per_user, per_address)


async def insert_signin_failure(conn: Executor, username: str, source: str) -> None:
    await conn.execute("INSERT INTO signin_failures (username, source) VALUES ($1, $2)", username, source)


# ------------------------------------------------------------------------------------------- audit log

async def insert_audit(conn: Executor, actor: str, action: str, target: str | None, detail_json: str,
                       source: str | None) -> None:
    """Append one row to the audit log (``detail_json``: a JSON object)."""
    await conn.execute("INSERT INTO audit_log (actor, action, target, detail, source) VALUES ($1, $2, $3, $4::jsonb, $5)",
                       actor, action, target, detail_json, source)
