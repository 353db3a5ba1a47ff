"""The console's Beranda (spec/operations.md "Support console"): the current business date and its state,
today's running totals per bank and channel, every instance's ISO 8583 connections, the last hour's answers
by response code, and the open work items — one read, audited in its own transaction.

Instances share only PostgreSQL, so each ``gateway serve`` publishes what its ISO 8583 listener holds
(``ConnectionPublisher``: a snapshot every ``[iso8583] snapshot_interval_s``, withdrawn at shutdown) and the
dashboard reads every instance's. A snapshot not renewed for three of its instance's intervals is shown as
stale: that instance stopped without withdrawing it, or cannot reach the database.
"""
from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from gateway.clock import Clock
from gateway.config import Config, DatabaseConfig
from gateway.domain.business_day import business_date
from gateway.domain.log_row import TEXT_MAX
from gateway.domain.text import loggable
from gateway.staff.accounts import audit
from gateway.staff.support import Actor
from gateway.store import dashboard as store
from gateway.store.db import bounded

log = structlog.get_logger("gateway")

# The answers the dashboard counts: those of the last hour.
ANSWERS_WINDOW = timedelta(hours=1)
# Response codes that mean the gateway, not the bank's request, failed: shown apart (91 host unavailable,
# 96 system malfunction).
ALERT_CODES = frozenset({"91", "96"})


@dataclass(frozen=True)
class ChannelTotals:
    """Today's payments and reversals (of today's payments) of one bank through one channel."""

    bank: str
    channel: str
    payments_count: int = 0
    payments_amount: int = 0
    reversals_count: int = 0
    reversals_amount: int = 0

    @property
    def net_count(self) -> int:
        return self.payments_count - self.reversals_count

    @property
    def net_amount(self) -> int:
        return self.payments_amount - self.reversals_amount


@dataclass(frozen=True)
class AnswerCount:
    """Answers sent with one response code over one channel (iso / http) in the window."""

    response_code: str
    channel: str
    count: int

    @property
    def alert(self) -> bool:
        return self.response_code in ALERT_CODES


@dataclass(frozen=True)
class AnswerLine:
    """One response code's answers in the window, per channel and in all."""

    response_code: str
    iso: int
    http: int

    @property
    def total(self) -> int:
        return self.iso + self.http

    @property
    def alert(self) -> bool:
        return self.response_code in ALERT_CODES


@dataclass(frozen=True)
class InstanceView:
    instance: str
    started_at: datetime
    updated_at: datetime
    stale: bool


@dataclass(frozen=True)
class ConnectionRow:
    """One ISO 8583 connection as its instance last published it."""

    instance: str
    connection_id: str
    bank: str
    peer: str
    connected_at: datetime
    signed_on: bool
    last_message_at: datetime
    in_flight: int
    updated_at: datetime
    stale: bool


@dataclass(frozen=True)
class Dashboard:
    business_date: date
    state: str                       # open / closing / closed ('open' while the date has no row)
    totals: tuple[ChannelTotals, ...]  # by bank, then channel
    answers: tuple[AnswerCount, ...]   # by response code, then channel
    answers_since: datetime
    open_items: int                  # open reconciliation items
    open_tombstones: int             # unmatched reversals without a resolution
    instances: tuple[InstanceView, ...]
    connections: tuple[ConnectionRow, ...]
    as_of: datetime                  # the database's clock when read

    @property
    def open_work(self) -> int:
        return self.open_items + self.open_tombstones

    @property
    def total(self) -> ChannelTotals:
        """Every bank and channel together."""
        return ChannelTotals("", "", *(sum(getattr(t, name) for t in self.totals) for name in
                                       ("payments_count", "payments_amount", "reversals_count", "reversals_amount")))

    def answer_lines(self) -> tuple[AnswerLine, ...]:
        """The answers by response code (ISO 8583 and HTTP side by side), 91 and 96 always present."""
        counts: dict[str, dict[str, int]] = {rc: {} for rc in ALERT_CODES}
        for a in self.answers:
            counts.setdefault(a.response_code, {})[a.channel] = a.count
        return tuple(AnswerLine(rc, by.get("iso", 0), by.get("http", 0)) for rc, by in sorted(counts.items()))

    def instance_connections(self, instance: str) -> int:
        return sum(1 for c in self.connections if c.instance == instance)


class DashboardService:
    def __init__(self, pool: asyncpg.Pool, config: Config, clock: Clock, acquire_timeout_s: float = 3.0):
        self.pool = pool
        self.config = config
        self.clock = clock
        self.acquire_timeout_s = acquire_timeout_s

    def today(self) -> date:
        """The current business date by the gateway's clock (the [testing] offset included)."""
        return business_date(self.clock.now(), self.config.region.tz, self.config.region.cutoff_time)

    async def overview(self, actor: Actor, now_utc: datetime | None = None) -> Dashboard:
        """Everything the Beranda shows, read by one statement (one snapshot, one round trip); the read and its
        audit row are one transaction.

        ``now_utc``: where the answers' hour ends (the real clock by default: the message log's times are
        the real clock's, whatever the [testing] offset)."""
        day = self.today()
        since = (now_utc or datetime.now(UTC)) - ANSWERS_WINDOW
        async with self.pool.acquire(timeout=self.acquire_timeout_s) as conn, conn.transaction():
            await store.plan_for_dashboard(conn)
            await audit(conn, actor.username, "dashboard.view", day.isoformat(), actor.detail(), actor.source)
            row = await store.overview(conn, day, since)
        return _dashboard(day, since, row)


def _dashboard(day: date, since: datetime, row: asyncpg.Record) -> Dashboard:
    merged: dict[tuple[str, str], dict[str, int]] = {}
    for bank, channel, count, amount in row["payments"]:
        merged.setdefault((bank, channel), {}).update(payments_count=count, payments_amount=amount)
    for bank, channel, count, amount in row["reversals"]:
        merged.setdefault((bank, channel), {}).update(reversals_count=count, reversals_amount=amount)
    totals = tuple(ChannelTotals(bank, channel, **values) for (bank, channel), values in sorted(merged.items()))
    answers = tuple(sorted((AnswerCount(rc, channel, count) for rc, channel, count in row["answers"]),
                           key=lambda a: (a.response_code, a.channel)))
    return Dashboard(
        business_date=day, state=row["state"] or "open", totals=totals, answers=answers, answers_since=since,
        open_items=row["open_items"], open_tombstones=row["open_tombstones"],
        instances=tuple(InstanceView(*r) for r in row["instances"]),
        connections=tuple(ConnectionRow(*r) for r in row["connections"]), as_of=row["as_of"])


# -- publishing this instance's connections ---------------------------------------------------------------


class ConnectionInfo(Protocol):
    """What the ISO 8583 listener knows of one open connection (IsoServer.connection_snapshot)."""

    @property
    def connection_id(self) -> str: ...
    @property
    def bank_code(self) -> str: ...
    @property
    def peer(self) -> str: ...
    @property
    def connected_at(self) -> datetime: ...
    @property
    def signed_on(self) -> bool: ...
    @property
    def last_message_at(self) -> datetime: ...
    @property
    def in_flight(self) -> int: ...


def instance_id(started_at: datetime) -> str:
    """``host:pid@start``: unique across instances and across restarts of one (a pid is reused)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}@{started_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


class ConnectionPublisher:
    """Each round replaces this instance's snapshot rows in one short transaction on the pool (its acquire
    timeout and work deadline); a failed round is logged and the next one tries again. The listeners never
    wait for it: the snapshot is taken synchronously from memory, then written."""

    def __init__(self, pool: asyncpg.Pool, settings: DatabaseConfig, snapshot: Callable[[], Sequence[ConnectionInfo]],
                 interval_s: int, started_at: datetime | None = None):
        self.pool = pool
        self.settings = settings
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.started_at = started_at or datetime.now(UTC)
        self.instance = instance_id(self.started_at)

    async def publish(self) -> int:
        """One round: the rows replaced; returns how many connections were published."""
        rows = [(c.connection_id, c.bank_code, loggable(c.peer, TEXT_MAX) or "", c.connected_at, c.signed_on,
                 c.last_message_at, c.in_flight) for c in self.snapshot()]
        async with bounded(self.pool, self.settings) as conn, conn.transaction():
            await store.replace_snapshot(conn, self.instance, self.started_at, self.interval_s, rows)
        return len(rows)

    async def run(self) -> None:
        """Every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.publish()
            except Exception as exc:  # noqa: BLE001 - retried on the next round
                log.warning("connection snapshot not published", error=repr(exc))
            await asyncio.sleep(self.interval_s)

    async def withdraw(self) -> None:
        """At shutdown: this instance's rows deleted (a failure is logged; the rows then turn stale)."""
        try:
            async with bounded(self.pool, self.settings) as conn:
                await store.delete_snapshot(conn, self.instance)
        except Exception as exc:  # noqa: BLE001 - shutting down either way
            log.warning("connection snapshot not withdrawn", error=repr(exc))
