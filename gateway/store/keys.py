"""Message keys: the answer stored with a request's key, and finding it again."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.domain.log_row import COLUMNS, LogRow


@dataclass(frozen=True)
class StoredAnswer:
    content_hash: bytes
    operation: str
    answer: dict[str, Any]


_INSERT_KEY = (
    "INSERT INTO message_keys (channel, bank_code, key, content_hash, operation, answer)"
    " VALUES ($1, $2, $3, $4, $5, $6::json) ON CONFLICT DO NOTHING RETURNING id"
)

# The key and the answer's message-log row in one statement: an approval's answer is as durable as the
# payment itself (spec/operations.md "Records kept"), at no extra round trip. The log row is written only
# when the key is new: a repeat's answer goes through the batched log like any other.
_INSERT_KEY_AND_LOG = (
    f"WITH k AS ({_INSERT_KEY}), "
    f"l AS (INSERT INTO message_log ({', '.join(COLUMNS)}) SELECT "
    + ", ".join(f"${i + 7}" + ("::jsonb" if c == "fields" else "") for i, c in enumerate(COLUMNS))
    + " FROM k) SELECT id FROM k"
)


async def insert_answer(conn: asyncpg.Connection, channel: str, bank: str, key: str, content_hash: bytes,
                        operation: str, answer: dict[str, Any], log_row: LogRow | None = None) -> bool:
    """Store the answer under the key inside the caller's transaction (with ``log_row``, the answer's
    message-log row too); False when the key already has one.

    A concurrent request with the same key waits here on the unique index until the first commits (then
    this returns False) or rolls back (then this one's answer is stored).
    """
    values = (channel, bank, key, content_hash, operation, json.dumps(answer))
    if log_row is None:
        key_id = await conn.fetchval(_INSERT_KEY, *values)
    else:
        key_id = await conn.fetchval(_INSERT_KEY_AND_LOG, *values, *log_row.record())
    return key_id is not None


def stored_answer(content_hash: bytes | None, operation: str | None, answer: str | None) -> StoredAnswer | None:
    """A stored answer from the columns a read returned beside other things (store/bills.read_keyed)."""
    if content_hash is None or operation is None or answer is None:
        return None
    return StoredAnswer(bytes(content_hash), operation, json.loads(answer))


async def find(conn: asyncpg.Connection, channel: str, bank: str, key: str) -> StoredAnswer | None:
    row = await conn.fetchrow(
        "SELECT content_hash, operation, answer FROM message_keys"
        " WHERE channel = $1 AND bank_code = $2 AND key = $3",
        channel, bank, key,
    )
    if row is None:
        return None
    return StoredAnswer(bytes(row["content_hash"]), row["operation"], json.loads(row["answer"]))
