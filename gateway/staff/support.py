"""Support staff's use cases: search, a transaction's story, notes, reconciliation items.

Each action and its audit row are one transaction (spec/operations.md "audit log": every staff action,
reads included), whichever adapter calls it: the staff API today, the console and the command line alike.
Items are resolved with a note, never by editing payments.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from gateway.domain.errors import FormatError
from gateway.domain.nop import parse_nop
from gateway.domain.text import check_text
from gateway.staff.accounts import audit
from gateway.store import audit_trail, work_queue
from gateway.store import transactions as store

RESOLUTIONS = ("accepted", "corrected", "escalated")
SEARCH_PAGE = store.PAGE  # rows of one search answer; a full page has a next one
AUDIT_PAGE = audit_trail.PAGE

# -- search filters, as the staff API's query string and the console's search form give them ------------

# Search parameters: at most as long as the column they are compared with can be (a longer value could
# match nothing, and is refused as malformed instead).
SEARCH_TEXT = {"registration_number": 32, "ntpd": 32, "rrn": 12, "stan": 6, "bank": 11}
_RC = re.compile(r"^[0-9A-Z]{2}$")
_BEFORE = re.compile(r"^[0-9]{1,19}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
BIGINT_MAX = 2**63 - 1


def search_date(raw: str, name: str = "date") -> date:
    """A YYYY-MM-DD date (Python's fromisoformat also takes 20261123 and week dates: not here)."""
    try:
        if not _DATE.match(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise FormatError(name, "must be a date YYYY-MM-DD") from None


def before_id(raw: str, name: str = "before") -> int:
    """A paging id: a positive 64-bit integer."""
    if not _BEFORE.match(raw) or not 1 <= int(raw) <= BIGINT_MAX:
        raise FormatError(name, "must be a positive 64-bit integer")
    return int(raw)


def search_filters(q: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """The filters ``SupportService.search`` takes and the response code asked for, from query-string-like
    text (empty values are no filter); FormatError names the first malformed one.

    The adapters' edge has already refused values that are no clean text; here each must also have its own
    form. A NOP may be typed in its display form (dots and dashes) or as 18 digits."""
    filters: dict[str, Any] = {}
    if q.get("nop"):
        filters["nop"] = parse_nop(q["nop"])
    for name, max_len in SEARCH_TEXT.items():
        if q.get(name):
            filters[name] = check_text(q[name].strip(), name, max_len)
    if q.get("date"):
        filters["date"] = search_date(q["date"])
    if q.get("before"):
        filters["before"] = before_id(q["before"])
    rc = q.get("rc") or None
    if rc is not None and not _RC.match(rc):
        raise FormatError("rc", "must be a response code: two digits or capital letters")
    return filters, rc


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff username, how they authenticated, and from where."""

    username: str
    via: str = ""
    source: str | None = None

    def detail(self, more: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**({"via": self.via} if self.via else {}), **(more or {})}


class SupportService:
    def __init__(self, pool: asyncpg.Pool, acquire_timeout_s: float = 3.0):
        self.pool = pool
        self.acquire_timeout_s = acquire_timeout_s

    async def _audit(self, conn: asyncpg.Connection, actor: Actor, action: str, target: str | None,
                     detail: dict[str, Any] | None = None) -> None:
        await audit(conn, actor.username, action, target, actor.detail(detail), actor.source)

    async def search(self, actor: Actor, filters: dict[str, Any], rc: str | None) -> list[asyncpg.Record]:
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "transactions.search", None, {k: str(v) for k, v in filters.items()})
            return await store.search(conn, filters, rc)

    async def story(self, actor: Actor, payment_id: int) -> dict[str, Any] | None:
        """The whole story of one payment, or None (nothing audited: there was nothing to read)."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            found = await store.story(conn, payment_id)
            if found is not None:
                await self._audit(conn, actor, "transactions.story", str(payment_id))
            return found

    async def add_note(self, actor: Actor, payment_id: int, note: str) -> bool:
        """False when there is no such payment."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            added = await store.add_note(conn, payment_id, actor.username, note)
            if added:
                await self._audit(conn, actor, "transactions.note", str(payment_id), {"note": note})
            return added

    async def open_items(self, actor: Actor, day: date | None) -> list[asyncpg.Record]:
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "reconciliation.items", day.isoformat() if day else None)
            return await store.open_items(conn, day)

    async def resolve(self, actor: Actor, item_id: int, resolution: str, note: str) -> str:
        """"resolved", "missing" (no such item) or "already" (resolved before)."""
        assert resolution in RESOLUTIONS, resolution
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            outcome = await store.resolve_item(conn, item_id, resolution, note, actor.username)
            if outcome not in ("missing", "already"):
                await self._audit(conn, actor, "reconciliation.resolve", str(item_id),
                                  {"resolution": resolution, "note": note})
            return outcome

    # -- the console's work queue and the audit log -------------------------------------------------------

    async def work_queue(self, actor: Actor, day: date | None, bank: str | None) -> dict[str, list[asyncpg.Record]]:
        """Open reconciliation items and unresolved tombstones (unmatched reversals), of one date and one bank
        when given: ``{"items": [...], "tombstones": [...]}``."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "workqueue.view", None,
                              {"date": day.isoformat() if day else None, "bank": bank})
            return {"items": await work_queue.open_items(conn, day, bank),
                    "tombstones": await work_queue.open_tombstones(conn, day, bank)}

    async def resolve_tombstone(self, actor: Actor, tombstone_id: int, resolution: str, note: str) -> str:
        """"resolved", "missing" (no such tombstone) or "already" (resolved before); like ``resolve``."""
        assert resolution in RESOLUTIONS, resolution
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            outcome = await work_queue.resolve_tombstone(conn, tombstone_id, resolution, note, actor.username)
            if outcome == "resolved":
                await self._audit(conn, actor, "tombstone.resolve", str(tombstone_id),
                                  {"resolution": resolution, "note": note})
            return outcome

    async def audit_entries(self, actor: Actor, *, user: str | None = None, action: str | None = None,
                            day: date | None = None, tz_name: str = "Asia/Jakarta",
                            before: int | None = None) -> list[asyncpg.Record]:
        """The audit log, newest first (``audit_trail.PAGE`` rows); reading it is itself audited. Who may
        read it (admin) is the adapter's check, as for every role."""
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await self._audit(conn, actor, "audit.view", None,
                              {"user": user, "action": action, "date": day.isoformat() if day else None,
                               "before": before})
            return await audit_trail.audit_entries(conn, actor=user, action=action, day=day, tz_name=tz_name,
                                                   before=before)
