"""Message keys: the answer stored with a request's key, and finding it again."""
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


async def insert_answer(conn: asyncpg.Connection, channel: str, bank: str, key: str, content_hash: bytes,
                        operation: str, answer: dict[str, Any]) -> bool:
    """Store the answer under the key inside the caller's transaction; False when the key already has one.

    A concurrent request with the same key waits here on the unique index until the first commits (then
    this returns False) or rolls back (then this one's answer is stored).
    """
    key_id = await conn.fetchval(
        "INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING RETURNING id",
        channel, bank, key, content_hash, operation, json.dumps(answer),
    )
    return key_id is not None


async def find(conn: asyncpg.Connection, channel: str, bank: str, key: str) -> StoredAnswer | None:
    row = await conn.fetchrow(
        "SELECT content_hash, operation, answer FROM message_keys"
        " WHERE channel = $1 AND bank_code = $2 AND key = $3",
        channel, bank, key,
    )
    if row is None:
        return None
    return StoredAnswer(bytes(row["content_hash"]), row["operation"], json.loads(row["answer"]))
