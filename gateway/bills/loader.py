"""Loading validated bill rows: binary COPY into a temporary staging table, then set-based upsert.

Shared by the CSV import (gateway.bills.importer) and the demo seed (gateway.demo.seed). Rows arrive as
tuples in the order of ``gateway.bills.rows.STAGING_COLUMNS``; they must already be valid (the bills
table's CHECK constraints are the last line of defence, not the validation).

The gateway owns the payment state of a bill (spec/domain.md): a bill with an active payment keeps its
status, principal and penalty whatever the file says, and a row that disagrees with it is a conflict.
The update decides that per row from its snapshot, which may predate a payment committed while the
long statement runs; such rows are recognised (the newest row version says paid, the snapshot's does
not) and kept too. Afterwards the kept rows that disagree with the file are sorted out with a fresh
snapshot: conflicts (active payment) are reported, the others take the file's values. Meanwhile this
transaction holds the row locks of every bill it changed, so no payment or reversal of them can commit
in between. This relies on the payment path locking the bill row and marking it paid (and a reversal
marking it unpaid) in the transaction that adds or removes the active payment (gateway.store.money).

Imports of one tax are serialized by an advisory lock, so new bills are inserted with a plain INSERT
(measured ~20% faster than INSERT ... ON CONFLICT for a million rows).
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import asyncpg

from gateway.bills.rows import STAGING_COLUMNS

STAGING_TABLE = "gw_bill_staging"

# Statements of a bulk load run far longer than the connection's command timeout (set for the
# payment path); every statement here passes this instead.
LONG_TIMEOUT = 24 * 3600.0

_CREATE_STAGING = f"""
CREATE TEMP TABLE {STAGING_TABLE} (
    line              integer  NOT NULL,
    bill_key          text     NOT NULL,
    nop               text     NOT NULL,
    tax_year          smallint NOT NULL,
    taxpayer_name     text     NOT NULL,
    object_address    text     NOT NULL,
    kelurahan         text     NOT NULL,
    kecamatan         text     NOT NULL,
    land_area         bigint   NOT NULL,
    building_area     bigint   NOT NULL,
    principal         bigint   NOT NULL,
    penalty           bigint   NOT NULL,
    due_date          date,
    valid_until       date,
    nik               text,
    acquisition_type  smallint,
    acquisition_value bigint,
    ppat_name         text,
    status            text     NOT NULL
) ON COMMIT DROP
"""

_DATA_COLUMNS = [c for c in STAGING_COLUMNS if c != "line"]
_PAYMENT_STATE = ("status", "principal", "penalty")
_DESCRIPTIVE = [c for c in _DATA_COLUMNS if c not in _PAYMENT_STATE and c != "bill_key"]

# Imports (and seeds) of one tax run one at a time: the INSERT below relies on no other transaction
# inserting the same keys meanwhile (only imports insert bills), and it is cheaper than ON CONFLICT.
_LOCK = "SELECT pg_advisory_xact_lock(1196900940, CASE $1::text WHEN 'PBB' THEN 1 ELSE 2 END)"

# 1. Existing bills. Only rows that differ from the file are written (an unchanged re-import costs a
#    join, not a million new row versions), so updated_at is the time of the last real change.
#    A bill keeps status, principal and penalty when it has an active payment, or when its current
#    row says paid although this statement's snapshot did not (a payment committed while the update
#    ran: the row is the newest version, sub-queries see the snapshot). Returns the ids of the rows so
#    kept whose payment state differs from the file: the candidates for steps 3 and 4.
_KEEP = ("(EXISTS (SELECT 1 FROM active_payments a WHERE a.bill_id = b.id)"
         " OR (b.status = 'paid' AND (SELECT b0.status FROM bills b0 WHERE b0.id = b.id) <> 'paid'))")
_DIFFERS = "(b.status, b.principal, b.penalty) IS DISTINCT FROM (s.status, s.principal, s.penalty)"
_UPDATE = f"""
WITH u AS (
    UPDATE bills b SET
        {", ".join(f"{c} = s.{c}" for c in _DESCRIPTIVE)},
        (status, principal, penalty) = (
            SELECT CASE WHEN k.keep THEN b.status ELSE s.status END,
                   CASE WHEN k.keep THEN b.principal ELSE s.principal END,
                   CASE WHEN k.keep THEN b.penalty ELSE s.penalty END
            FROM (SELECT {_KEEP} AS keep OFFSET 0) k),   -- OFFSET 0: evaluated once, not per column
        updated_at = now()
    FROM {STAGING_TABLE} s
    WHERE b.tax = $1 AND b.bill_key = s.bill_key
      AND (({", ".join(f"b.{c}" for c in _DESCRIPTIVE)}) IS DISTINCT FROM ({", ".join(f"s.{c}" for c in _DESCRIPTIVE)})
           OR {_DIFFERS})
    RETURNING b.id, {_DIFFERS} AS kept
)
SELECT coalesce(array_agg(id) FILTER (WHERE kept), '{{}}') AS kept FROM u
"""

# 2. New bills.
_INSERT = f"""
INSERT INTO bills (tax, {", ".join(_DATA_COLUMNS)})
SELECT $1::text, {", ".join(f"s.{c}" for c in _DATA_COLUMNS)}
FROM {STAGING_TABLE} s
WHERE NOT EXISTS (SELECT 1 FROM bills b WHERE b.tax = $1 AND b.bill_key = s.bill_key)
"""

# 3. Among the kept rows (fresh snapshot; this transaction holds their row locks, so no payment or
#    reversal of them can commit meanwhile): those with an active payment are conflicts...
_CONFLICTS = f"""
SELECT s.line, s.bill_key, p.ntpd
FROM bills b
JOIN active_payments a ON a.bill_id = b.id
JOIN payments p ON p.id = a.payment_id
JOIN {STAGING_TABLE} s ON s.bill_key = b.bill_key
WHERE b.id = ANY($1::bigint[])
ORDER BY s.line
"""

# 4. ... and the others (a payment reversed while step 1 ran) take the file's payment state.
_UNKEEP = f"""
UPDATE bills b SET status = s.status, principal = s.principal, penalty = s.penalty, updated_at = now()
FROM {STAGING_TABLE} s
WHERE b.id = ANY($1::bigint[]) AND s.bill_key = b.bill_key
  AND NOT EXISTS (SELECT 1 FROM active_payments a WHERE a.bill_id = b.id)
"""

# After this many new rows the planner's statistics of bills are refreshed in the same transaction:
# the next import's joins (and the payment path) are planned from a table that is suddenly 10x bigger.
_ANALYZE_AFTER = 50_000


@dataclass(frozen=True)
class Conflict:
    line: int
    bill_key: str
    ntpd: str


@dataclass
class LoadResult:
    loaded: int = 0
    updated: int = 0
    conflicts: list[Conflict] = field(default_factory=list)


@contextlib.asynccontextmanager
async def bulk_transaction(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction (a savepoint inside a caller's transaction) whose COMMIT is not bound by the
    connection's short command timeout; rolled back on any exception."""
    nested = conn.is_in_transaction()
    begin, commit, rollback = (
        ("SAVEPOINT gw_bulk_load", "RELEASE SAVEPOINT gw_bulk_load", "ROLLBACK TO SAVEPOINT gw_bulk_load")
        if nested else ("BEGIN", "COMMIT", "ROLLBACK"))
    await conn.execute(begin, timeout=LONG_TIMEOUT)
    try:
        # No server-side limit either; and no JIT: compiling the bulk statements' expressions costs
        # more than it saves (measured: the unchanged-row join of a re-import runs twice as fast).
        # work_mem: the staging table is sorted by key for the merge join (module docstring).
        await conn.execute("SET LOCAL statement_timeout = 0; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'",
                           timeout=LONG_TIMEOUT)
        yield
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute(rollback, timeout=LONG_TIMEOUT)
        raise
    await conn.execute(commit, timeout=LONG_TIMEOUT)


async def create_staging(conn: asyncpg.Connection) -> None:
    """The staging table of this transaction (dropped at its end). Call inside bulk_transaction."""
    await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGING_TABLE}", timeout=LONG_TIMEOUT)
    await conn.execute(_CREATE_STAGING, timeout=LONG_TIMEOUT)


async def copy_to_staging(conn: asyncpg.Connection, records: Iterable[tuple]) -> int:
    """Binary COPY of ``records`` (tuples in STAGING_COLUMNS order; a generator streams) into staging."""
    status = await conn.copy_records_to_table(
        STAGING_TABLE, records=records, columns=list(STAGING_COLUMNS), timeout=LONG_TIMEOUT)
    return _count(status)


async def upsert_staging(conn: asyncpg.Connection, tax: str, staged: int) -> LoadResult:
    """Insert or update ``bills`` of ``tax`` ("PBB"/"BPHTB") from the ``staged`` staging rows.

    ``updated`` counts rows for existing bills that are not conflicts (changed or not); a row for a
    bill with an active payment that agrees with it is simply updated."""
    tax = tax.upper()
    await conn.execute(_LOCK, tax, timeout=LONG_TIMEOUT)
    await conn.execute(f"ANALYZE {STAGING_TABLE}", timeout=LONG_TIMEOUT)
    # A hash join of a big staging table with a big bills table spills into batches and then emits rows
    # in hash order: the update then visits heap and index pages at random and thrashes shared_buffers
    # (measured: 71 s instead of 25 s for a million changed rows). A merge join (or, for a small file,
    # index lookups) visits bills in key order.
    previous = await conn.fetchval("SELECT current_setting('enable_hashjoin')", timeout=LONG_TIMEOUT)
    await conn.execute("SET LOCAL enable_hashjoin = off", timeout=LONG_TIMEOUT)
    kept = await conn.fetchval(_UPDATE, tax, timeout=LONG_TIMEOUT)
    await conn.execute("SELECT set_config('enable_hashjoin', $1, true)", previous, timeout=LONG_TIMEOUT)
    inserted = _count(await conn.execute(_INSERT, tax, timeout=LONG_TIMEOUT))
    conflicts: list[Conflict] = []
    if kept:
        conflicts = [Conflict(r["line"], r["bill_key"], r["ntpd"])
                     for r in await conn.fetch(_CONFLICTS, kept, timeout=LONG_TIMEOUT)]
        await conn.execute(_UNKEEP, kept, timeout=LONG_TIMEOUT)
    if inserted >= _ANALYZE_AFTER:
        await conn.execute("ANALYZE bills", timeout=LONG_TIMEOUT)
    return LoadResult(loaded=inserted, updated=staged - inserted - len(conflicts), conflicts=conflicts)


def _count(status: str) -> int:
    return int(status.split()[-1])


async def load_rows(conn: asyncpg.Connection, tax: str, records: Iterable[tuple]) -> LoadResult:
    """Stage and upsert already-validated records in one transaction (the demo seed's entry point)."""
    async with bulk_transaction(conn):
        await create_staging(conn)
        staged = await copy_to_staging(conn, records)
        return await upsert_staging(conn, tax, staged)
