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
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg
import structlog

from gateway.domain.codes import RC
from gateway.service.requests import AnswerLog, MessageKey
from gateway.service.results import from_json, to_json
from gateway.store import keys
from gateway.store.db import UNAVAILABLE, watchdog

if TYPE_CHECKING:
    from gateway.service.context import ServiceContext

log = structlog.get_logger("gateway.payment")


class Result(Protocol):
    """What ``run_once`` needs of a result type (the dataclasses of gateway.service.results): its RC, and
    a constructor that makes an answer of an RC alone."""

    def __init__(self, *, rc: str) -> None: ...

    @property
    def rc(self) -> str: ...


R = TypeVar("R", bound=Result)

# Answers that are never stored: the bank is told to retry, and the retry must be processed anew.
TRANSIENT = frozenset({RC.CUTOFF_IN_PROGRESS, RC.HOST_UNAVAILABLE, RC.SYSTEM_ERROR})

# What a request's budget keeps for its work when the wait for a pool connection is stretched.
WORK_RESERVE_S = 0.5

# Lock-order accidents are retried a bounded number of times before answering 96.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_RETRIES = 3


class _Rollback(Exception):
    def __init__(self, result: Any):
        self.result = result


class _Repeat(Exception):
    """The key already holds an answer: undo this attempt's work, then answer from the stored one."""


class _CommitUnknown(Exception):
    """The commit was sent and did not come back: the payment may or may not exist (RC 91)."""


Work = Callable[[asyncpg.Connection], Awaitable[R]]


def answer_written(result: Any, answer_log: AnswerLog) -> bool:
    """Whether ``result``'s answer row went into the database with it: an approval (not a repeat) of a request
    whose adapter gave an ``answer_log``. The adapter then must not queue that row again."""
    return answer_log is not None and result.rc == RC.APPROVED and not result.repeated


async def run_once(ctx: "ServiceContext", *, bank: str | None, key: MessageKey | None, operation: str,
                   result_type: type[R], work: Work[R], answer_log: AnswerLog = None,
                   deadline: float | None = None) -> R:
    """Run ``work`` exactly once per key, answering within ``deadline`` (``time.monotonic()``; default: the
    request budget from now). ``answer_log(result)`` gives the message-log row of an approval's answer,
    written by the same transaction."""
    deadline = deadline if deadline is not None else time.monotonic() + ctx.request_budget_s
    for attempt in range(MAX_RETRIES + 1):
        try:
            return await _attempt(ctx, bank, key, operation, result_type, work, answer_log, deadline)
        except RETRYABLE as exc:
            if attempt == MAX_RETRIES:
                log.error("retries exhausted", operation=operation, bank=bank, error=repr(exc))
                return result_type(rc=RC.SYSTEM_ERROR.value)
        except (_CommitUnknown, *UNAVAILABLE) as exc:
            log.warning("database unavailable", operation=operation, bank=bank, error=repr(exc.__cause__ or exc))
            return result_type(rc=RC.HOST_UNAVAILABLE.value)
        except Exception:  # noqa: BLE001 - answered 96, logged once with context
            log.exception("unexpected failure", operation=operation, bank=bank)
            return result_type(rc=RC.SYSTEM_ERROR.value)
    raise AssertionError("unreachable")


async def _attempt(ctx: "ServiceContext", bank: str | None, key: MessageKey | None, operation: str,
                   result_type: type[R], work: Work[R], answer_log: AnswerLog, deadline: float) -> R:
    async with connection(ctx, deadline) as conn:
        return await _in_transaction(conn, bank, key, operation, result_type, work, answer_log)


@contextlib.asynccontextmanager
async def connection(ctx: "ServiceContext", deadline: float) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection for a request that must be answered by ``deadline`` (``time.monotonic()``)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise asyncio.TimeoutError("request budget spent before reaching the database")
    # A bounded wait for a connection: an exhausted pool or a dead server is RC 91, never a hang. A burst
    # on a pool still growing (new connections take a moment) may wait beyond acquire_timeout_ms as long
    # as the request's budget keeps WORK_RESERVE_S for the work itself: a bank prefers a late 00 to a 91.
    wait_s = min(remaining, max(ctx.acquire_timeout_s, remaining - WORK_RESERVE_S))
    async with ctx.pool.acquire(timeout=wait_s) as conn:
        # The deadline is enforced by terminating the connection, not by cancelling (store.db.watchdog).
        with watchdog(conn, deadline - time.monotonic()):
            yield conn


async def run_direct(ctx: "ServiceContext", *, bank: str | None, operation: str, result_type: type[R],
                     work: Work[R], deadline: float | None = None) -> R:
    """Run ``work``, whose statements commit one by one (no transaction around them), with the answers of
    :func:`run_once` for a database that is away (91) or a failure (96). ``work`` keeps exactly-once itself
    (the inquiry's read and write, payment/posting.py's one-statement posting)."""
    deadline = deadline if deadline is not None else time.monotonic() + ctx.request_budget_s
    try:
        async with connection(ctx, deadline) as conn:
            return await work(conn)
    except UNAVAILABLE as exc:
        log.warning("database unavailable", operation=operation, bank=bank, error=repr(exc))
        return result_type(rc=RC.HOST_UNAVAILABLE.value)
    except Exception:  # noqa: BLE001 - answered 96, logged once with context
        log.exception("unexpected failure", operation=operation, bank=bank)
        return result_type(rc=RC.SYSTEM_ERROR.value)


async def _in_transaction(conn: asyncpg.Connection, bank: str | None, key: MessageKey | None, operation: str,
                          result_type: type[R], work: Work[R], answer_log: AnswerLog) -> R:
    transaction = conn.transaction()
    await transaction.start()
    try:
        result = await work(conn)
        if result.rc in TRANSIENT:
            raise _Rollback(result)
        if key is not None:
            assert bank is not None, "a keyed request names its bank"
            row = answer_log(result) if answer_log is not None and answer_written(result, answer_log) else None
            if not await keys.insert_answer(conn, key.channel, bank, key.key, key.content_hash(), operation,
                                            to_json(result), row):
                raise _Repeat()
    except BaseException as exc:
        await _rollback(conn, transaction)
        if isinstance(exc, _Rollback):
            return exc.result
        if isinstance(exc, _Repeat):
            return await _stored_answer(conn, bank, key, operation, result_type)
        if isinstance(exc, asyncpg.UniqueViolationError) and key is not None:
            # A repeat whose work collides with what its original wrote (e.g. the repeat of a payment that
            # was reversed since: the bill is payable again, but the original's ISO origin is taken) is
            # still a repeat: the stored answer decides. Without one, it is a real failure.
            assert bank is not None, "a keyed request names its bank"
            stored = await keys.find(conn, key.channel, bank, key.key)
            if stored is not None:
                return answer_repeat(stored, key, operation, result_type)
        raise
    try:
        await transaction.commit()
    except Exception as exc:  # noqa: BLE001 - whatever broke, the commit's outcome is unknown
        if _closed(conn) or isinstance(exc, UNAVAILABLE):
            raise _CommitUnknown() from exc
        raise
    return result


def _closed(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # a terminated connection's pool proxy is detached
        return True


async def _rollback(conn: asyncpg.Connection, transaction) -> None:
    """Undo the attempt; on a broken connection there is nothing to undo (the server ends it)."""
    if _closed(conn):
        return
    try:
        await transaction.rollback()
    except Exception:  # noqa: BLE001 - the connection is broken: the pool discards it
        if not _closed(conn):
            conn.terminate()


async def _stored_answer(conn: asyncpg.Connection, bank: str | None, key: MessageKey | None, operation: str,
                         result_type: type[R]) -> R:
    assert key is not None and bank is not None
    stored = await keys.find(conn, key.channel, bank, key.key)
    assert stored is not None, "a key that conflicted must hold a committed answer"
    return answer_repeat(stored, key, operation, result_type)


def answer_repeat(stored: keys.StoredAnswer, key: MessageKey, operation: str, result_type: type[R]) -> R:
    """The answer to a repeat of ``key``: the stored one, or 94 when its content or operation differ."""
    if stored.content_hash != key.content_hash() or stored.operation != operation:
        return result_type(rc=RC.DUPLICATE.value)
    return dataclasses.replace(from_json(result_type, stored.answer), repeated=True)
