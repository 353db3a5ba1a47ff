"""The settlement report (spec/operations.md "Settlement report"): the frozen totals of a closed date,
or the running totals of an open one, per bank and tax, then a TOTAL row."""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

import asyncpg

from gateway.settlement.close import frozen_totals, normalized
from gateway.settlement.csvout import to_csv
from gateway.settlement.invariants import REPORT_KEYS, Totals, report_table, totals

COLUMNS = ("business_date", "bank_code", "bank_name", "tax", *REPORT_KEYS)


def render_csv(day: datetime.date, items: Iterable[Totals], bank_names: Mapping[str, str]) -> str:
    lines, sums = report_table(items)
    rows: list[tuple[object, ...]] = [(day.isoformat(), t.bank, bank_names.get(t.bank, ""), t.tax, *values)
                                      for t, values in lines]
    rows.append((day.isoformat(), "TOTAL", "", "ALL", *sums))
    return to_csv(COLUMNS, rows)


async def report_totals(conn: asyncpg.Connection, day: datetime.date) -> tuple[str, tuple[Totals, ...]]:
    """(state, totals): the frozen totals of a closed date, else the running ones ('open' when no row)."""
    state, frozen, _, _ = await frozen_totals(conn, day)
    if state == "closed" and frozen is not None:
        return state, frozen
    return state or "open", normalized(await totals(conn, day))


async def settlement_report_csv(conn: asyncpg.Connection, day: datetime.date, banks) -> str:
    """``banks``: the configured banks (objects with ``code`` and ``name``)."""
    _, items = await report_totals(conn, day)
    return render_csv(day, items, {b.code: b.name for b in banks})


async def settlement_report_pdf(conn: asyncpg.Connection, day: datetime.date, config) -> bytes:
    from gateway.settlement.report_pdf import settlement_pdf

    state, items = await report_totals(conn, day)
    _, _, closed_at, closed_by = await frozen_totals(conn, day)
    return settlement_pdf(day=day, items=items, bank_names={b.code: b.name for b in config.banks},
                          region_name=config.region.name, state=state, closed_at=closed_at, closed_by=closed_by,
                          tz=config.region.tz)
