"""Engine fixtures over a real PostgreSQL database (one fresh database per test)."""
from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from gateway.clock import FixedClock
from gateway.config import build_config
from gateway.engine import Engine
from gateway.service.context import ServiceContext

BANKS = [{"code": str(100 + i), "name": f"BANK {i}", "allow": [f"10.0.0.{i + 1}/32"]} for i in range(60)]
# 2026-11-23 09:15 in Asia/Jakarta (UTC+7).
DEFAULT_NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


@pytest.fixture
def config():
    banks = BANKS + [{"code": "900", "name": "PBB ONLY", "taxes": ["pbb"], "allow": ["10.0.1.1/32"]},
                     {"code": "901", "name": "DISABLED", "enabled": False, "allow": ["10.0.1.2/32"]}]
    return build_config({"banks": banks}, env={}, source="test")


@pytest.fixture
def clock():
    return FixedClock(DEFAULT_NOW)


@pytest.fixture
async def pool(db_url):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=60, command_timeout=10)
    yield pool
    await pool.close()


@pytest.fixture
async def engine(pool, clock, config):
    return Engine(ServiceContext(pool=pool, clock=clock, config=config))
