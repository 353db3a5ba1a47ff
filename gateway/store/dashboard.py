"""The console's Beranda: its one read (business date, today's totals, the last hour's answers, open work,
every instance's ISO 8583 connections) and the connection snapshots each ``gateway serve`` publishes
(migration 0013)."""
from __future__ import annotations

import datetime
from collections.abc import Sequence

import asyncpg

# Bounds of what one dashboard read returns (an instance holds at most [iso8583] max_connections).
CONNECTIONS_MAX = 5000
INSTANCES_MAX = 200
# An instance whose snapshot is this old has stopped without withdrawing it (SIGKILL, a lost host): any live
# instance deletes it.
ABANDONED_AFTER_S = 3600

# Everything in one statement, one round trip. Each part is bounded by an index (migration 0013):
# - the date's payments: an index-only scan of payments_date_bank_channel, in group order;
# - the date's reversals: ledger_reversals (a reversal's 'bank' entry carries its payment's date), then the
#   payment by primary key for its channel;
# - the answers since $2: message_log_answers, in the month partitions that can hold them;
# - open work: recon_items_open, and the tombstones without a resolution;
# - the snapshots: two small tables, with staleness judged by the database's clock against each instance's
#   own interval (three intervals without an update).
_OVERVIEW = f"""
SELECT
  (SELECT state FROM business_dates WHERE business_date = $1) AS state,
  now() AS as_of,
  ARRAY(SELECT ROW(t.bank_code, t.channel, t.n, t.amount) FROM (
      SELECT bank_code, channel, count(*) AS n, sum(total)::bigint AS amount
      FROM payments WHERE business_date = $1 GROUP BY bank_code, channel) t) AS payments,
  ARRAY(SELECT ROW(t.bank_code, t.channel, t.n, t.amount) FROM (
      SELECT p.bank_code, p.channel, count(*) AS n, sum(p.total)::bigint AS amount
      FROM ledger_entries l,
           LATERAL (SELECT bank_code, channel, total FROM payments WHERE id = l.payment_id OFFSET 0) p
      WHERE l.business_date = $1 AND l.reversal_id IS NOT NULL AND l.account = 'bank'
      GROUP BY p.bank_code, p.channel) t) AS reversals,
  ARRAY(SELECT ROW(t.response_code, t.channel, t.n) FROM (
      SELECT response_code, channel, count(*) AS n FROM message_log
      WHERE logged_at >= $2 AND direction = 'out' AND response_code IS NOT NULL
      GROUP BY response_code, channel) t) AS answers,
  (SELECT count(*) FROM recon_items WHERE status = 'open') AS open_items,
  (SELECT count(*) FROM tombstones t
   WHERE NOT EXISTS (SELECT 1 FROM tombstone_resolutions r WHERE r.tombstone_id = t.id)) AS open_tombstones,
  ARRAY(SELECT ROW(i.instance, i.started_at, i.updated_at,
                   now() - i.updated_at > make_interval(secs => 3 * i.snapshot_interval_s))
        FROM gateway_instances i ORDER BY i.instance LIMIT {INSTANCES_MAX}) AS instances,
  ARRAY(SELECT ROW(c.instance, c.connection_id, c.bank_code, c.peer, c.connected_at, c.signed_on,
                   c.last_message_at, c.in_flight, c.updated_at,
                   now() - i.updated_at > make_interval(secs => 3 * i.snapshot_interval_s))
        FROM iso_connections c JOIN gateway_instances i ON i.instance = c.instance
        ORDER BY c.bank_code, c.connected_at, c.instance, c.connection_id LIMIT {CONNECTIONS_MAX}) AS connections
"""


async def plan_for_dashboard(conn: asyncpg.Connection) -> None:
    """For the rest of this transaction: no JIT. The read is a few index scans of at most a million entries,
    where compiling would cost more than it saves (its estimated cost can pass jit_above_cost)."""
    await conn.execute("SET LOCAL jit = off")


async def overview(conn: asyncpg.Connection, day: datetime.date, since: datetime.datetime) -> asyncpg.Record:
    """One row: state (None while the date has no row), as_of (the database's now()), payments and reversals
    as (bank_code, channel, count, amount) tuples, answers as (response_code, channel, count) since ``since``,
    open_items, open_tombstones, instances as (instance, started_at, updated_at, stale) and connections as
    (instance, connection_id, bank_code, peer, connected_at, signed_on, last_message_at, in_flight, updated_at,
    stale)."""
    row = await conn.fetchrow(_OVERVIEW, day, since)
    assert row is not None
    return row


# ------------------------------------------------------------------------- the connection snapshots


async def replace_snapshot(conn: asyncpg.Connection, instance: str, started_at: datetime.datetime,
                           interval_s: int, connections: Sequence[tuple]) -> None:
    """This instance's row and its connections replaced by ``connections`` (connection_id, bank_code, peer,
    connected_at, signed_on, last_message_at, in_flight); call inside a transaction. Instances abandoned for
    ABANDONED_AFTER_S are deleted on the way."""
    await conn.execute(
        "INSERT INTO gateway_instances (instance, started_at, snapshot_interval_s, updated_at)"
        " VALUES ($1, $2, $3, now()) ON CONFLICT (instance) DO UPDATE"
        " SET snapshot_interval_s = EXCLUDED.snapshot_interval_s, updated_at = now()",
        instance, started_at, interval_s)
    await conn.execute("DELETE FROM iso_connections WHERE instance = $1", instance)
    if connections:
        columns = list(zip(*connections))
        await conn.execute(
            "INSERT INTO iso_connections (instance, connection_id, bank_code, peer, connected_at, signed_on,"
            " last_message_at, in_flight, updated_at)"
            " SELECT $1, c.*, now() FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[],"
            " $6::boolean[], $7::timestamptz[], $8::integer[]) AS c",
            instance, *(list(c) for c in columns))
    await conn.execute(
        "DELETE FROM gateway_instances WHERE instance <> $1"
        f" AND updated_at < now() - make_interval(secs => {ABANDONED_AFTER_S})", instance)


async def delete_snapshot(conn: asyncpg.Connection, instance: str) -> None:
    """This instance's row and its connections (at shutdown)."""
    await conn.execute("DELETE FROM gateway_instances WHERE instance = $1", instance)
