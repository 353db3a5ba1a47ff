"""Treasury's use cases: a business date's status and totals, closing it, a bank's reconciliation file,
the reconciliation reports and the settlement statement.

Each read and its audit row are one transaction; so are a reconciliation import and its audit row. A close
runs its own short transactions (spec/operations.md "Settlement": mark closing, check, freeze), and its
audit row — done or refused — follows it. The staff API calls these today, the console and the command line
alike.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.config import Config
from gateway.settlement.close import CloseResult, SettlementError, close_business_date, frozen_totals
from gateway.settlement.invariants import Totals
from gateway.settlement.recon import ReconResult, reconcile
from gateway.settlement.report import report_totals, settlement_report_csv, settlement_report_pdf
from gateway.staff.accounts import audit
from gateway.staff.support import Actor
from gateway.store import settlements as store


@dataclass(frozen=True)
class DateStatus:
    state: str
    totals: tuple[Totals, ...]
    closed_at: datetime.datetime | None
    closed_by: str | None


class TreasuryService:
    def __init__(self, pool: asyncpg.Pool, config: Config, acquire_timeout_s: float = 3.0):
        self.pool = pool
        self.config = config
        self.acquire_timeout_s = acquire_timeout_s

    async def _audit(self, conn: asyncpg.Connection | asyncpg.Pool, actor: Actor, action: str, target: str,
                     detail: dict[str, Any] | None = None) -> None:
        await audit(conn, actor.username, action, target, actor.detail(detail), actor.source)

    async def status(self, actor: Actor | None, day: datetime.date) -> DateStatus:
        """The date's state and totals (frozen when closed, running otherwise); audited when ``actor``."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            if actor is not None:
                await self._audit(conn, actor, "settlement.view", day.isoformat())
            state, items = await report_totals(conn, day)
            _, _, closed_at, closed_by = await frozen_totals(conn, day)
        return DateStatus(state, tuple(items), closed_at, closed_by)

    async def close(self, actor: Actor, day: datetime.date, now_utc: datetime.datetime) -> CloseResult:
        """Close the date; a refusal (before the cut-off, a conservation mismatch) is audited and raised."""
        try:
            result = await close_business_date(
                self.pool, day, now_utc=now_utc, tz=self.config.region.tz, cutoff=self.config.region.cutoff_time,
                operator=actor.username, statement_timeout_ms=self.config.database.close_statement_timeout_ms)
        except SettlementError as exc:
            await self._audit(self.pool, actor, "settlement.close.refused", day.isoformat(), {"reason": str(exc)})
            raise
        await self._audit(self.pool, actor, "settlement.close", day.isoformat(),
                          {"already_closed": result.already_closed})
        return result

    async def reconcile(self, actor: Actor, day: datetime.date, bank: str, data: bytes,
                        source: str | None = None) -> ReconResult:
        """Import a bank's reconciliation file (``ReconFileError`` when it is unusable: nothing kept);
        ``source`` names it in the report (an upload when not given)."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            result = await reconcile(conn, day, bank, source or f"upload:{bank}", data)
            await self._audit(conn, actor, "reconciliation.import", f"{day.isoformat()}/{bank}",
                              {"report_id": result.report_id, "new_items": result.new_items,
                               "counts": result.counts})
        return result

    async def reports(self, actor: Actor, day: datetime.date) -> list[asyncpg.Record]:
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "reconciliation.view", day.isoformat())
            return await store.recon_reports(conn, day)

    async def statement_csv(self, actor: Actor, day: datetime.date) -> str:
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "settlement.report", f"{day.isoformat()} csv")
            return await settlement_report_csv(conn, day, self.config.banks)

    async def statement_pdf(self, actor: Actor, day: datetime.date) -> bytes:
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "settlement.report", f"{day.isoformat()} pdf")
            return await settlement_report_pdf(conn, day, self.config)
