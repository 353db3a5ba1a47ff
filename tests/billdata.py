"""Bills written straight into a test database (no importer involved)."""
from __future__ import annotations

from datetime import date

from gateway.domain.sspd import make_registration


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
