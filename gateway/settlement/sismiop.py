"""The SISMIOP export (spec/operations.md "SISMIOP export"): PBB payments of a business date in the shape
of PEMBAYARAN_SPPT. Reversed payments are left out."""
from __future__ import annotations

import datetime

import asyncpg

from gateway.settlement.csvout import to_csv
from gateway.store import settlements as store

COLUMNS = ("kd_propinsi", "kd_dati2", "kd_kecamatan", "kd_kelurahan", "kd_blok", "no_urut", "kd_jns_op",
           "thn_pajak_sppt", "pembayaran_sppt_ke", "denda_sppt", "jml_sppt_yg_dibayar", "tgl_pembayaran_sppt",
           "kd_bank", "ntpd")

# SISMIOP widths of the NOP's codes: 2+2+3+3+3+4+1 = 18 digits.
_WIDTHS = (2, 2, 3, 3, 3, 4, 1)


def split_nop(nop: str) -> tuple[str, ...]:
    if len(nop) != 18 or not nop.isdigit():
        raise ValueError(f"NOP must be 18 digits: {nop!r}")
    parts, at = [], 0
    for width in _WIDTHS:
        parts.append(nop[at:at + width])
        at += width
    return tuple(parts)


async def sismiop_csv(conn: asyncpg.Connection, day: datetime.date) -> str:
    rows = []
    for r in await store.unreversed_pbb_payments(conn, day):
        rows.append((*split_nop(r["nop"].strip()), f"{r['tax_year']:04d}", 1, r["penalty"], r["total"],
                     day.isoformat(), r["bank_code"], r["ntpd"].strip()))
    return to_csv(COLUMNS, rows)
