"""Builds the object graph once: database, pool, services."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from gateway.clock import Clock
from gateway.config import Config
from gateway.payment.context import ServiceContext
from gateway.payment.engine import Engine
from gateway.store.db import create_pool, database_url


@dataclass
class Services:
    config: Config
    pool: asyncpg.Pool
    engine: Engine


@contextlib.asynccontextmanager
async def open_services(config: Config, clock: Clock | None = None) -> AsyncIterator[Services]:
    with database_url(config) as dsn:
        pool = await create_pool(config.database, dsn)
        try:
            ctx = ServiceContext(pool=pool, clock=clock or Clock(config.clock_offset_seconds), config=config)
            yield Services(config=config, pool=pool, engine=Engine(ctx))
        finally:
            await pool.close()
