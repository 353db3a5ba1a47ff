"""The object graph, built once: the database (embedded or configured), the migrations, the pool, and every
service over it. ``gateway serve`` and the command line both start here; the adapters (HTTP, ISO 8583, the
command line) receive services and never reach the store themselves.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import TracebackType

import asyncpg

from gateway.clock import Clock
from gateway.config import Config
from gateway.engine import Engine
from gateway.proofs.keys import KeyStore
from gateway.service.context import ServiceContext
from gateway.service.inquiry_recorder import InquiryRecorder
from gateway.service.lookups import Lookups
from gateway.settlement.service import TreasuryService
from gateway.staff.dashboard import DashboardService
from gateway.staff.support import SupportService
from gateway.staff.tax_object import TaxObjectService
from gateway.store.db import connect, connection, create_pool, database_url, work_deadline_s
from gateway.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from gateway.store.message_log import MessageLog
from gateway.store.migrate import Migration, migrate

__all__ = ["EmbeddedPostgresError", "Services", "embedded_cluster", "migrated", "open_services", "owner_connection",
           "prepared"]

# The command line's pool: operator work, one or two connections as the owner with the patient timeouts.
_OPERATOR_POOL = (1, 2)


@dataclass
class Services:
    config: Config
    pool: asyncpg.Pool
    ctx: ServiceContext
    engine: Engine
    keys: KeyStore
    lookups: Lookups
    support: SupportService
    treasury: TreasuryService
    tax_objects: TaxObjectService
    dashboard: DashboardService
    dsn: str

    def inquiry_recorder(self) -> InquiryRecorder:
        """The write-behind of inquiries' quotes and keys over this pool (gateway.service.inquiry_recorder)."""
        return InquiryRecorder(self.pool, acquire_timeout_s=self.config.database.acquire_timeout_ms / 1000,
                               write_timeout_s=work_deadline_s(self.config.database))

    def message_log(self) -> MessageLog:
        """The batched message-log writer over this pool, with the configured bounds (not started)."""
        s = self.config.message_log
        return MessageLog(self.pool, max_queue=s.max_queue, batch_size=s.batch_rows,
                          flush_interval_s=s.flush_interval_ms / 1000, acquire_timeout_s=s.acquire_timeout_ms / 1000,
                          write_timeout_s=s.write_timeout_ms / 1000)


@contextlib.asynccontextmanager
async def open_services(config: Config, clock: Clock | None = None, *, operator: bool = False) -> AsyncIterator[Services]:
    """The services over a migrated database: migrations run first as the owner (the pool's runtime role
    can run no DDL, and does not exist before the first migration).

    ``operator``: the command line's graph — a small pool as the owner with the batch timeouts (closing a
    date, imports, reports may take minutes); ``gateway serve`` uses the runtime role's pool.
    """
    with database_url(config) as dsn:
        owner_url = config.database.migrate_url or dsn
        owner = await connect(config.database, owner_url)
        try:
            await migrate(owner)
        finally:
            await owner.close()
        if operator:
            pool = await create_pool(config.database, owner_url, runtime_role=False, batch=True, size=_OPERATOR_POOL)
        else:
            pool = await create_pool(config.database, dsn)
        try:
            keys = KeyStore(config.proof.key_dir)
            ctx = ServiceContext(pool=pool, clock=clock or Clock(config.clock_offset_seconds), config=config, keys=keys)
            staff_wait_s = config.database.staff_acquire_timeout_ms / 1000
            yield Services(config=config, pool=pool, ctx=ctx, engine=Engine(ctx), keys=keys,
                           lookups=Lookups(pool, config.database),
                           support=SupportService(pool, staff_wait_s),
                           treasury=TreasuryService(pool, config, staff_wait_s),
                           tax_objects=TaxObjectService(pool, config, keys, ctx.clock, staff_wait_s,
                                                         relief=lambda: ctx.programs),
                           dashboard=DashboardService(pool, config, ctx.clock, staff_wait_s), dsn=dsn)
        finally:
            await pool.close()


@contextlib.contextmanager
def prepared(config: Config) -> Iterator[str]:
    """What a gateway does once before serving, however many workers it runs: the database (the embedded
    cluster started when no URL is configured, stopped again on exit), the migrations as the owner, the first
    proof-signing key. Yields the database URL."""
    import asyncio

    async def migrate_once(url: str) -> None:
        owner = await connect(config.database, url)
        try:
            await migrate(owner)
        finally:
            await owner.close()

    with database_url(config) as dsn:
        asyncio.run(migrate_once(config.database.migrate_url or dsn))
        KeyStore(config.proof.key_dir).init()
        yield dsn


class migrated(contextlib.AbstractAsyncContextManager):
    """``async with migrated(config) as conn``: a connection as the owner with the schema brought current.

    For the command line's work on one connection (imports, exports, staff accounts): none of it meets an
    old schema, and the embedded cluster (no database url configured) is started, and stopped again, in one
    place. ``applied`` holds the migrations this call applied (``db migrate`` reports them).
    """

    def __init__(self, config: Config):
        self._config = config
        self._exit = contextlib.AsyncExitStack()
        self.applied: list[Migration] = []

    async def __aenter__(self) -> asyncpg.Connection:
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(connection(self._config))
            self.applied = await migrate(conn)  # a failure closes the connection on the way out
            self._exit = stack.pop_all()
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        return await self._exit.__aexit__(exc_type, exc, tb)


def owner_connection(config: Config) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A fresh owner connection without migrating (work that reconnects after losing ``migrated``'s)."""
    return connection(config)


def embedded_cluster(config: Config) -> EmbeddedPostgres:
    """The embedded PostgreSQL of ``config``'s state directory (``db start|stop``)."""
    return EmbeddedPostgres(config.state_dir / "postgres")
