"""Message keys: claim a request's key, or find the answer stored for it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class StoredAnswer:
    content_hash: bytes
    operation: str
    answer: dict[str, Any]


async def claim(conn: asyncpg.Connection, channel: str, bank: str, key: str, content_hash: bytes,
                operation: str) -> int | StoredAnswer:
    """Insert the key inside the caller's transaction; returns its id, or the answer already stored.

    A concurrent request with the same key waits on the unique index until the first commits (then
    finds its answer) or rolls back (then claims the key itself): repeats are serialised by PostgreSQL.
    """
    key_id = await conn.fetchval(
        "INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)"
        " VALUES ($1, $2, $3, $4, $5, '{}') ON CONFLICT DO NOTHING RETURNING id",
        channel, bank, key, content_hash, operation,
    )
    if key_id is not None:
        return key_id
    row = await conn.fetchrow(
        "SELECT content_hash, operation, answer FROM message_keys"
        " WHERE channel = $1 AND bank_code = $2 AND key = $3",
        channel, bank, key,
    )
    assert row is not None, "a key that conflicted must exist once its transaction committed"
    return StoredAnswer(bytes(row["content_hash"]), row["operation"], json.loads(row["answer"]))


async def save_answer(conn: asyncpg.Connection, key_id: int, answer: dict[str, Any]) -> None:
    await conn.execute("UPDATE message_keys SET answer = $2::jsonb WHERE id = $1", key_id, json.dumps(answer))
