"""The asyncpg pool and the choice of database: a configured URL, else the embedded cluster.

Every wait on the database is bounded (spec/domain.md invariant 3): the server ends a statement after
``statement_timeout_ms`` and gives up a lock after ``lock_timeout_ms`` (both cancel server-side, at once,
without the round trip of a client cancel), ends a transaction whose client went silent after
``idle_in_transaction_timeout_ms`` (a payment's locks never outlive a partition), and both ends of the
socket probe a silent peer with TCP keepalives and a user timeout.

The pool's connections run as the runtime role (``RUNTIME_ROLE``): no DDL, no TRUNCATE, no DELETE of
history. Migrations connect without it (``migrate_url``, else the same URL as the owner).
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import asyncpg
import structlog

from gateway.config import Config, DatabaseConfig


class GatewayConnection(asyncpg.Connection):
    """No reset query when a connection goes back to the pool.

    asyncpg's default (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs a round trip per request.
    The gateway keeps no session state on pooled connections: its locks are transaction-scoped
    (pg_advisory_xact_lock), it never LISTENs, and it sets no session variables after connect. An open
    transaction is still rolled back on release by asyncpg itself.
    """

    def get_reset_query(self) -> str:
        return ""


log = structlog.get_logger("gateway.db")

# The database is unreachable, a wait ran out, or the outcome of what was sent is unknown: a request is
# answered RC 91 (never a hang), a log batch is kept and retried.
UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # asyncpg's protocol state machine refusing a connection that broke mid-exchange ("cannot switch to
    # state …"): the server may or may not have seen the statement.
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
    asyncpg.IdleInTransactionSessionTimeoutError,
    asyncpg.ReadOnlySQLTransactionError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

# Beyond the statement timeout, what a request's work may take in Python before its connection is ended.
WORK_MARGIN_MS = 300


def work_deadline_s(settings: DatabaseConfig) -> float:
    """How long a request's database work may last once it holds a connection."""
    return (settings.statement_timeout_ms + WORK_MARGIN_MS) / 1000

# The role the pool's connections act as (created by the migrations, granted only what the gateway needs).
RUNTIME_ROLE = "gateway_runtime"


def server_settings(settings: DatabaseConfig, *, runtime: bool) -> dict[str, str]:
    values = {
        "application_name": "gateway",
        "timezone": "UTC",
        "statement_timeout": str(settings.statement_timeout_ms),
        "lock_timeout": str(settings.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
        "tcp_keepalives_idle": str(settings.keepalive_idle_s),
        "tcp_keepalives_interval": str(settings.keepalive_interval_s),
        "tcp_keepalives_count": str(settings.keepalive_count),
        "tcp_user_timeout": str(_user_timeout_ms(settings)),
    }
    if runtime:
        values["role"] = RUNTIME_ROLE
    return values


def _user_timeout_ms(settings: DatabaseConfig) -> int:
    # Unacknowledged data for longer than a request may wait means the peer is gone.
    return max(settings.statement_timeout_ms + settings.acquire_timeout_ms, 1000)


def tune_socket(conn: asyncpg.Connection, settings: DatabaseConfig) -> None:
    """Keepalives and a user timeout on the client end of a TCP connection (no-op on a Unix socket)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, settings.keepalive_idle_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, settings.keepalive_interval_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, settings.keepalive_count)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, _user_timeout_ms(settings))
    except (OSError, AttributeError):  # a platform without these options: the server-side ones remain
        pass


@contextlib.contextmanager
def watchdog(conn: asyncpg.Connection, seconds: float) -> Iterator[None]:
    """Terminate ``conn`` if the block is still running after ``seconds``.

    A deadline enforced by closing the socket, not by cancelling: a cancelled asyncpg query sends its cancel
    request over a new connection and a rollback over this one, and against a server that went silent
    (a partition, a half-open socket) both wait for seconds. Terminated, every await on the connection
    fails at once, and the pool replaces it.
    """
    handle = asyncio.get_running_loop().call_later(max(seconds, 0.0), _terminate, conn)
    try:
        yield
    finally:
        handle.cancel()


def _terminate(conn: asyncpg.Connection) -> None:
    log.warning("database deadline reached; connection terminated")
    try:
        conn.terminate()
    except Exception:  # noqa: BLE001 - already released or closed: nothing left to stop
        pass


async def answers(conn: asyncpg.Connection) -> bool:
    """Whether the database answers a trivial query on ``conn`` (the caller bounds the wait)."""
    return await conn.fetchval("SELECT true")


@contextlib.asynccontextmanager
async def bounded(pool: asyncpg.Pool, settings: DatabaseConfig) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection for one short read or write of a request: a bounded wait for the connection and a
    deadline for the work (spec/domain.md invariant 3: an answer within 2 s when the database is away)."""
    async with pool.acquire(timeout=settings.acquire_timeout_ms / 1000) as conn:
        with watchdog(conn, work_deadline_s(settings)):
            yield conn


async def create_pool(settings: DatabaseConfig, dsn: str, *, runtime_role: bool = True, batch: bool = False,
                      size: tuple[int, int] | None = None) -> asyncpg.Pool:
    """The pool: the runtime role's for requests; ``batch`` with ``size`` for the command line's operator work
    (as the owner, with the patient timeouts of ``connect``)."""
    # statement_cache_size stays on: the payment path runs the same few statements all day.
    # No client-side command_timeout: on expiry asyncpg sends a cancel over a new connection and waits for
    # it, which against a black-holed server takes seconds; the server's statement_timeout and the
    # request deadline of the unit of work (which terminates the connection) bound the wait instead.
    async def init(conn: asyncpg.Connection) -> None:
        tune_socket(conn, settings)

    return await asyncpg.create_pool(
        dsn,
        connection_class=GatewayConnection,
        min_size=size[0] if size else settings.pool_min,
        max_size=size[1] if size else settings.pool_max,
        timeout=settings.connect_timeout_ms / 1000,
        server_settings=_with_batch(server_settings(settings, runtime=runtime_role), settings, batch),
        init=init,
    )


async def connect(settings: DatabaseConfig, dsn: str, *, runtime_role: bool = False,
                  batch: bool = True) -> asyncpg.Connection:
    """One connection, as the owner (migrations, the operator's CLI work) unless ``runtime_role``.

    ``batch``: long operator work (imports, closing a date, reports) gets the long statement timeout and
    patient lock and idle waits; a bank's request never runs on such a connection.
    """
    values = _with_batch(server_settings(settings, runtime=runtime_role), settings, batch)
    conn = await asyncpg.connect(dsn, timeout=settings.connect_timeout_ms / 1000, server_settings=values)
    tune_socket(conn, settings)
    return conn


def _with_batch(values: dict[str, str], settings: DatabaseConfig, batch: bool) -> dict[str, str]:
    if batch:
        values["statement_timeout"] = str(settings.close_statement_timeout_ms)
        values["lock_timeout"] = str(max(settings.lock_timeout_ms, 10_000))
        values["idle_in_transaction_session_timeout"] = str(max(settings.idle_in_transaction_timeout_ms, 600_000))
    return values


@contextlib.contextmanager
def database_url(config: Config) -> Iterator[str]:
    """Yield the database URL; with none configured, the embedded cluster, stopped again on exit
    when this process started it."""
    if config.database.url:
        yield config.database.url
        return
    from gateway.store.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(config.state_dir / "postgres")
    dsn = cluster.start()
    try:
        yield dsn
    finally:
        if getattr(cluster, "started_here", False):
            cluster.stop()


@contextlib.asynccontextmanager
async def connection(config: Config, *, owner: bool = True) -> AsyncIterator[asyncpg.Connection]:
    """A connection for operator work: as the owner (``migrate_url``, else the URL) by default."""
    with database_url(config) as dsn:
        url = config.database.migrate_url if owner and config.database.migrate_url else dsn
        conn = await connect(config.database, url)
        try:
            yield conn
        finally:
            await conn.close()
