"""The bank request nonces of the HTTP API (spec/http-api.md "Bank authentication"): each used once."""
from __future__ import annotations

import asyncpg


async def claim(conn: asyncpg.Connection, bank_code: str, nonce: str) -> bool:
    """Record ``nonce`` for ``bank_code``; False when the bank already used it (a replay)."""
    fresh = await conn.fetchval(
        "INSERT INTO http_nonces (bank_code, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        bank_code, nonce)
    return fresh is not None
