"""One request = one transaction, exactly once per message key.

``run_once`` claims the request's key, runs the work, stores the answer with the key and commits, all
in one transaction. A repeat with the same content gets the stored answer (marked ``repeated``); with
different content, RC 94. Answers that say "try again" (90, 91, 96) roll everything back, key included,
so the bank's retry is processed afresh.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import structlog

from gateway.domain.codes import RC
from gateway.payment.requests import MessageKey
from gateway.payment.results import from_json, to_json
from gateway.store import keys

if TYPE_CHECKING:
    from gateway.payment.context import ServiceContext

log = structlog.get_logger("gateway.payment")

R = TypeVar("R")

# Answers that are never stored: the bank is told to retry, and the retry must be processed anew.
TRANSIENT = frozenset({RC.CUTOFF_IN_PROGRESS, RC.HOST_UNAVAILABLE, RC.SYSTEM_ERROR})

# The database is unreachable or the outcome of a commit is unknown: RC 91, never a hang.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    asyncpg.ReadOnlySQLTransactionError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

# Lock-order accidents are retried a bounded number of times before answering 96.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_RETRIES = 3


class _Rollback(Exception):
    def __init__(self, result: Any):
        self.result = result


Work = Callable[[asyncpg.Connection, int | None], Awaitable[R]]


async def run_once(ctx: "ServiceContext", *, bank: str | None, key: MessageKey | None, operation: str,
                   result_type: type[R], work: Work[R]) -> R:
    for attempt in range(MAX_RETRIES + 1):
        try:
            return await _attempt(ctx.pool, bank, key, operation, result_type, work, ctx.acquire_timeout_s)
        except RETRYABLE as exc:
            if attempt == MAX_RETRIES:
                log.error("retries exhausted", operation=operation, bank=bank, error=repr(exc))
                return result_type(rc=RC.SYSTEM_ERROR.value)
        except UNAVAILABLE as exc:
            log.warning("database unavailable", operation=operation, bank=bank, error=repr(exc))
            return result_type(rc=RC.HOST_UNAVAILABLE.value)
        except Exception:  # noqa: BLE001 - answered 96, logged once with context
            log.exception("unexpected failure", operation=operation, bank=bank)
            return result_type(rc=RC.SYSTEM_ERROR.value)
    raise AssertionError("unreachable")


async def _attempt(pool: asyncpg.Pool, bank: str | None, key: MessageKey | None, operation: str,
                   result_type: type[R], work: Work[R], acquire_timeout_s: float) -> R:
    try:
        # A bounded wait for a connection: an exhausted pool or a dead server is RC 91, never a hang.
        async with pool.acquire(timeout=acquire_timeout_s) as conn:
            async with conn.transaction():
                key_id: int | None = None
                if key is not None:
                    assert bank is not None, "a keyed request names its bank"
                    claimed = await keys.claim(conn, key.channel, bank, key.key, key.content_hash(), operation)
                    if isinstance(claimed, keys.StoredAnswer):
                        if claimed.content_hash != key.content_hash() or claimed.operation != operation:
                            return result_type(rc=RC.DUPLICATE.value)
                        stored = from_json(result_type, claimed.answer)
                        return dataclasses.replace(stored, repeated=True)
                    key_id = claimed
                result = await work(conn, key_id)
                if result.rc in TRANSIENT:
                    raise _Rollback(result)
                if key_id is not None:
                    await keys.save_answer(conn, key_id, to_json(result))
                return result
    except _Rollback as rollback:
        return rollback.result
