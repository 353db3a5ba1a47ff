"""One request = one transaction, exactly once per message key.

``run_once`` runs the work, stores the answer under the request's key and commits, all in one transaction.
If the key already holds an answer, the unique index says so at the insert: the whole transaction is rolled
back (whatever the work did is undone) and the stored answer is returned, marked ``repeated``; with
different content, RC 94. Doing the work first and the key last costs a first request one statement
instead of two; a repeat — rare — does its work in vain.

Answers that say "try again" (90, 91, 96) roll everything back, key included, so the bank's retry is
processed afresh.
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


class _Repeat(Exception):
    """The key already holds an answer: undo this attempt's work, then answer from the stored one."""


Work = Callable[[asyncpg.Connection], Awaitable[R]]


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
    # A bounded wait for a connection: an exhausted pool or a dead server is RC 91, never a hang.
    async with pool.acquire(timeout=acquire_timeout_s) as conn:
        try:
            async with conn.transaction():
                result = await work(conn)
                if result.rc in TRANSIENT:
                    raise _Rollback(result)
                if key is not None:
                    assert bank is not None, "a keyed request names its bank"
                    if not await keys.insert_answer(conn, key.channel, bank, key.key, key.content_hash(),
                                                    operation, to_json(result)):
                        raise _Repeat()
                return result
        except _Rollback as rollback:
            return rollback.result
        except _Repeat:
            stored = await keys.find(conn, key.channel, bank, key.key)
            assert stored is not None, "a key that conflicted must hold a committed answer"
            return _answer_repeat(stored, key, operation, result_type)
        except asyncpg.UniqueViolationError:
            # A repeat whose work collides with what its original wrote (e.g. the repeat of a payment that
            # was reversed since: the bill is payable again, but the original's ISO origin is taken) is
            # still a repeat: the stored answer decides. Without one, it is a real failure.
            stored = await keys.find(conn, key.channel, bank, key.key) if key is not None else None
            if stored is None:
                raise
            return _answer_repeat(stored, key, operation, result_type)


def _answer_repeat(stored: keys.StoredAnswer, key: MessageKey, operation: str, result_type: type[R]) -> R:
    if stored.content_hash != key.content_hash() or stored.operation != operation:
        return result_type(rc=RC.DUPLICATE.value)
    return dataclasses.replace(from_json(result_type, stored.answer), repeated=True)
