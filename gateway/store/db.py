"""The asyncpg pool and the choice of database: a configured URL, else the embedded cluster."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

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


async def create_pool(settings: DatabaseConfig, dsn: str) -> asyncpg.Pool:
    # statement_cache_size stays on: the payment path runs the same few statements all day.
    return await asyncpg.create_pool(
        dsn,
        connection_class=GatewayConnection,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        command_timeout=settings.command_timeout_ms / 1000,
        timeout=settings.connect_timeout_ms / 1000,
        server_settings={"application_name": "gateway", "timezone": "UTC"},
    )


async def connect(settings: DatabaseConfig, dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        dsn,
        command_timeout=settings.command_timeout_ms / 1000,
        timeout=settings.connect_timeout_ms / 1000,
        server_settings={"application_name": "gateway", "timezone": "UTC"},
    )


@contextlib.contextmanager
def database_url(config: Config) -> "contextlib.AbstractContextManager[str]":
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
async def connection(config: Config) -> AsyncIterator[asyncpg.Connection]:
    with database_url(config) as dsn:
        conn = await connect(config.database, dsn)
        try:
            yield conn
        finally:
            await conn.close()
