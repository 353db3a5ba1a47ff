"""Engine fixtures over a real PostgreSQL database (one fresh database per test)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest

from gateway.clock import FixedClock
from gateway.config import build_config
from gateway.domain.sspd import make_registration
from gateway.payment.context import ServiceContext
from gateway.payment.engine import Engine

BANKS = [{"code": str(100 + i), "name": f"BANK {i}"} for i in range(60)]
# 2026-11-23 09:15 in Asia/Jakarta (UTC+7).
DEFAULT_NOW = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def jakarta(year: int, month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo("Asia/Jakarta")).astimezone(UTC)


@pytest.fixture
def config():
    banks = BANKS + [{"code": "900", "name": "PBB ONLY", "taxes": ["pbb"]},
                     {"code": "901", "name": "DISABLED", "enabled": False}]
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


async def add_pbb(conn, nop: str = "327501000100100010", year: int = 2026, principal: int = 150_000,
                  due: date = date(2026, 8, 31), status: str = "unpaid", name: str = "SITI AMINAH") -> int:
    return await conn.fetchval(
        "INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, object_address, kelurahan, kecamatan,"
        " land_area, building_area, principal, due_date, status)"
        " VALUES ('PBB', $1 || lpad($2::int::text, 4, '0'), $1, $2::int, $3, 'JL. MERDEKA NO. 1', 'MARGAHAYU',"
        " 'BEKASI TIMUR', 120, 90, $4, $5, $6) RETURNING id",
        nop, year, name, principal, due, status)


async def add_bphtb(conn, serial: int = 123, principal: int = 5_000_000, penalty: int = 0,
                    valid_until: date = date(2026, 12, 31), status: str = "unpaid",
                    nop: str = "327501000100100020", year: int = 2026) -> str:
    registration = make_registration(2026, 11, serial)
    await conn.execute(
        "INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, object_address, kelurahan, kecamatan,"
        " land_area, building_area, principal, penalty, valid_until, nik, acquisition_type, acquisition_value,"
        " ppat_name, status)"
        " VALUES ('BPHTB', $1, $2, $3, 'BUDI SANTOSO', 'JL. AHMAD YANI 5', 'MARGAHAYU', 'BEKASI TIMUR', 200, 150,"
        " $4, $5, $6, '3275011203800004', 1, 180000000, 'NOTARIS RINA, S.H.', $7)",
        registration, nop, year, principal, penalty, valid_until, status)
    return registration
