"""The SQL of the bill import (gateway.bills.loader): a temporary staging table filled by binary COPY, and
the set-based statements that upsert ``bills`` from it, whole (the demo seed) or in key-range batches.

The loader decides what runs when (batches, counts, conflicts); this module says how, statement by
statement. Every statement of a bulk load runs far longer than the connection's command timeout (set for
the payment path), so each one here passes ``LONG_TIMEOUT`` instead.

The upsert (steps 1 to 4 below) relies on the payment path locking the bill row and marking it paid (and
a reversal marking it unpaid) in the transaction that adds or removes the active payment
(gateway.store.money): see the loader's docstring for why that makes a bill with an active payment keep
its payment state.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence

import asyncpg

STAGING_TABLE = "gw_bill_staging"

# Statements of a bulk load run far longer than the connection's command timeout (set for the
# payment path); every statement here passes this instead.
LONG_TIMEOUT = 24 * 3600.0

# The staging table's columns in table order: the order of the tuples COPY takes (the validators'
# ``gateway.bills.rows.STAGING_COLUMNS``, which the loader checks against this).
STAGING_TABLE_COLUMNS: tuple[str, ...] = (
    "line", "bill_key", "nop", "tax_year", "taxpayer_name", "object_address", "kelurahan", "kecamatan",
    "land_area", "building_area", "principal", "penalty", "due_date", "valid_until", "nik",
    "acquisition_type", "acquisition_value", "ppat_name", "status",
)

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
)
"""

_DATA_COLUMNS = [c for c in STAGING_TABLE_COLUMNS if c != "line"]
_PAYMENT_STATE = ("status", "principal", "penalty")
_DESCRIPTIVE = [c for c in _DATA_COLUMNS if c not in _PAYMENT_STATE and c != "bill_key"]

# Imports (and seeds) of one tax run one at a time: the INSERT below relies on no other transaction
# inserting the same keys meanwhile (only imports insert bills), and it is cheaper than ON CONFLICT.
_LOCK_KEY = "1196900940, CASE $1::text WHEN 'PBB' THEN 1 ELSE 2 END"
_LOCK = f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"
# The batched import holds it for the session (across its batch transactions) and releases it at the end.
_SESSION_LOCK = f"SELECT pg_advisory_lock({_LOCK_KEY})"
_SESSION_UNLOCK = f"SELECT pg_advisory_unlock({_LOCK_KEY})"

# A batch: the staging rows whose keys lie in [$2, $3] (both bounds are keys of the batch). The same
# range on the bills side lets both be read as index ranges in key order and merge-joined: measured 2.5x
# faster than one index descent into bills per staging row.
_STAGED_IN_BATCH = " AND s.bill_key BETWEEN $2 AND $3"
_BILLS_IN_BATCH = " AND b.bill_key BETWEEN $2 AND $3"

# 1. Existing bills. Only rows that differ from the file are written (an unchanged re-import costs a
#    join, not a million new row versions), so updated_at is the time of the last real change.
#    A bill keeps status, principal and penalty when it has an active payment, or when its current
#    row says paid although this statement's snapshot did not (a payment committed while the update
#    ran: the row is the newest version, sub-queries see the snapshot). Returns the ids of the rows so
#    kept whose payment state differs from the file: the candidates for steps 3 and 4.
_KEEP = ("(EXISTS (SELECT 1 FROM active_payments a WHERE a.bill_id = b.id)"
         " OR (b.status = 'paid' AND (SELECT b0.status FROM bills b0 WHERE b0.id = b.id) <> 'paid'))")
_DIFFERS = "(b.status, b.principal, b.penalty) IS DISTINCT FROM (s.status, s.principal, s.penalty)"
_UPDATE_ALL = f"""
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
    WHERE b.tax = $1 AND b.bill_key = s.bill_key{{batch}}
      AND (({", ".join(f"b.{c}" for c in _DESCRIPTIVE)}) IS DISTINCT FROM ({", ".join(f"s.{c}" for c in _DESCRIPTIVE)})
           OR {_DIFFERS})
    RETURNING b.id, {_DIFFERS} AS kept
)
SELECT coalesce(array_agg(id) FILTER (WHERE kept), '{{}}') AS kept FROM u
"""
_UPDATE = _UPDATE_ALL.replace("{batch}", "")
_UPDATE_BATCH = _UPDATE_ALL.replace("{batch}", _STAGED_IN_BATCH + _BILLS_IN_BATCH)

# 2. New bills.
_INSERT_ALL = f"""
INSERT INTO bills (tax, {", ".join(_DATA_COLUMNS)})
SELECT $1::text, {", ".join(f"s.{c}" for c in _DATA_COLUMNS)}
FROM {STAGING_TABLE} s
WHERE NOT EXISTS (SELECT 1 FROM bills b WHERE b.tax = $1 AND b.bill_key = s.bill_key{{bills}}){{staged}}
"""
_INSERT = _INSERT_ALL.replace("{bills}", "").replace("{staged}", "")
_INSERT_BATCH = _INSERT_ALL.replace("{bills}", _BILLS_IN_BATCH).replace("{staged}", _STAGED_IN_BATCH)

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

# The batches of the staged rows: ranges of $1 consecutive keys, in key order.
_BATCHES = f"""
SELECT min(bill_key) AS first_key, max(bill_key) AS last_key, count(*) AS rows
FROM (SELECT bill_key, (row_number() OVER (ORDER BY bill_key) - 1) / $1 AS batch FROM {STAGING_TABLE}) t
GROUP BY batch ORDER BY batch
"""

# A batch joins a key range of staging with the same key range of bills: always a merge join of the two
# index ranges, whatever the statistics say. They are no guide here: a range of a few thousand 22-digit
# keys is estimated at one row, and with that estimate the planner picked a nested loop that scans the
# whole staging range once per bill (measured: 2 s instead of 10 ms for some batches of a re-import).
# No JIT either (see bulk_transaction). The conflicts, looked up by bill id, get nested loops back.
_BATCH_SETTINGS = ("SET LOCAL jit = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_nestloop = off;"
                   " SET LOCAL enable_seqscan = off")
_CONFLICT_SETTINGS = "SET LOCAL enable_nestloop = on"

_BULK_SETTINGS = "SET LOCAL statement_timeout = 0; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"


# ------------------------------------------------------------------------------------------ transactions

@contextlib.asynccontextmanager
async def bulk_transaction(conn: asyncpg.Connection, settings: str = _BULK_SETTINGS) -> AsyncIterator[None]:
    """A transaction (a savepoint inside a caller's transaction) whose COMMIT is not bound by the
    connection's short command timeout; rolled back on any exception."""
    nested = conn.is_in_transaction()
    begin, commit, rollback = (
        ("SAVEPOINT gw_bulk_load", "RELEASE SAVEPOINT gw_bulk_load", "ROLLBACK TO SAVEPOINT gw_bulk_load")
        if nested else ("BEGIN", "COMMIT", "ROLLBACK"))
    # By default no server-side limit either (staging a whole file streams for as long as Python reads
    # it); and no JIT: compiling the bulk statements' expressions costs more than it saves (measured: the
    # unchanged-row join of a re-import runs twice as fast). work_mem: the staging table is sorted by key
    # (merge join, batch boundaries). One round trip for both: an import runs a transaction per batch.
    await conn.execute(f"{begin}; {settings}", timeout=LONG_TIMEOUT)
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.execute(rollback, timeout=LONG_TIMEOUT)
        raise
    await conn.execute(commit, timeout=LONG_TIMEOUT)


def batch_transaction(conn: asyncpg.Connection) -> contextlib.AbstractAsyncContextManager[None]:
    """The bulk transaction of one batch, with the planner settings of a key-range merge join."""
    return bulk_transaction(conn, _BATCH_SETTINGS)


# ------------------------------------------------------------------------------------------------ staging

async def create_staging(conn: asyncpg.Connection, *, session: bool = False) -> None:
    """The staging table: of this transaction (dropped at its end; call inside bulk_transaction), or
    with ``session`` of this connection until :func:`drop_staging` (the batched import)."""
    await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGING_TABLE}", timeout=LONG_TIMEOUT)
    await conn.execute(_CREATE_STAGING + ("" if session else " ON COMMIT DROP"), timeout=LONG_TIMEOUT)


async def drop_staging(conn: asyncpg.Connection) -> None:
    """Drop the session's staging table when the connection can still do so (best effort: a temporary
    table goes with its session anyway)."""
    if conn.is_closed() or conn.is_in_transaction():
        return
    with contextlib.suppress(Exception):
        await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGING_TABLE}", timeout=LONG_TIMEOUT)


async def copy_to_staging(conn: asyncpg.Connection, records: Iterable[tuple], columns: Sequence[str]) -> int:
    """Binary COPY of ``records`` (tuples in ``columns`` order; a generator streams) into staging; the
    number of rows copied."""
    status = await conn.copy_records_to_table(
        STAGING_TABLE, records=records, columns=list(columns), timeout=LONG_TIMEOUT)
    return _count(status)


async def index_staging(conn: asyncpg.Connection) -> None:
    """Index the staged rows by key and refresh their statistics (before cutting them into batches)."""
    await conn.execute(f"CREATE INDEX ON pg_temp.{STAGING_TABLE} (bill_key)", timeout=LONG_TIMEOUT)
    await conn.execute(f"ANALYZE pg_temp.{STAGING_TABLE}", timeout=LONG_TIMEOUT)


async def staged_key_ranges(conn: asyncpg.Connection, rows_per_batch: int) -> list[tuple[str, str, int]]:
    """(first key, last key, rows) of consecutive ranges of ``rows_per_batch`` staged rows, in key order."""
    rows = await conn.fetch(_BATCHES, rows_per_batch, timeout=LONG_TIMEOUT)
    return [(r["first_key"], r["last_key"], r["rows"]) for r in rows]


# ----------------------------------------------------------------------------------------- the tax's lock

async def lock_tax(conn: asyncpg.Connection, tax: str) -> None:
    """Serialize the loads of ``tax`` until this transaction ends."""
    await conn.execute(_LOCK, tax, timeout=LONG_TIMEOUT)


async def lock_tax_for_session(conn: asyncpg.Connection, tax: str) -> None:
    """Serialize the loads of ``tax`` until :func:`unlock_tax_for_session` (across batch transactions)."""
    await conn.execute(_SESSION_LOCK, tax, timeout=LONG_TIMEOUT)


async def unlock_tax_for_session(conn: asyncpg.Connection, tax: str) -> None:
    await conn.execute(_SESSION_UNLOCK, tax, timeout=LONG_TIMEOUT)


# ---------------------------------------------------------------------------------------------- upserting

async def update_from_staging(conn: asyncpg.Connection, tax: str) -> list[int]:
    """Step 1 over the whole staging table; the ids of the kept rows whose payment state differs."""
    await conn.execute(f"ANALYZE {STAGING_TABLE}", timeout=LONG_TIMEOUT)
    # A hash join of a big staging table with a big bills table spills into batches and then emits rows
    # in hash order: the update then visits heap and index pages at random and thrashes shared_buffers
    # (measured: 71 s instead of 25 s for a million changed rows). A merge join (or, for a small file,
    # index lookups) visits bills in key order.
    previous = await conn.fetchval("SELECT current_setting('enable_hashjoin')", timeout=LONG_TIMEOUT)
    await conn.execute("SET LOCAL enable_hashjoin = off", timeout=LONG_TIMEOUT)
    kept: list[int] = await conn.fetchval(_UPDATE, tax, timeout=LONG_TIMEOUT)
    await conn.execute("SELECT set_config('enable_hashjoin', $1, true)", previous, timeout=LONG_TIMEOUT)
    return kept


async def insert_from_staging(conn: asyncpg.Connection, tax: str) -> int:
    """Step 2 over the whole staging table; the number of new bills."""
    return _count(await conn.execute(_INSERT, tax, timeout=LONG_TIMEOUT))


async def update_batch_from_staging(conn: asyncpg.Connection, tax: str, first_key: str, last_key: str) -> list[int]:
    """Step 1 for the staged keys first_key..last_key; the ids of the kept rows whose payment state differs."""
    kept: list[int] = await conn.fetchval(_UPDATE_BATCH, tax, first_key, last_key, timeout=LONG_TIMEOUT)
    return kept


async def insert_batch_from_staging(conn: asyncpg.Connection, tax: str, first_key: str, last_key: str) -> int:
    """Step 2 for the staged keys first_key..last_key; the number of new bills."""
    return _count(await conn.execute(_INSERT_BATCH, tax, first_key, last_key, timeout=LONG_TIMEOUT))


async def use_nested_loops(conn: asyncpg.Connection) -> None:
    """Within a batch transaction: let the conflicts (looked up by bill id) use nested loops again."""
    await conn.execute(_CONFLICT_SETTINGS, timeout=LONG_TIMEOUT)


async def conflicts_among(conn: asyncpg.Connection, kept: list[int]) -> list[tuple[int, str, str]]:
    """Step 3: (line, bill_key, ntpd) of the ``kept`` bills that have an active payment, in line order."""
    rows = await conn.fetch(_CONFLICTS, kept, timeout=LONG_TIMEOUT)
    return [(r["line"], r["bill_key"], r["ntpd"]) for r in rows]


async def release_kept(conn: asyncpg.Connection, kept: list[int]) -> None:
    """Step 4: the ``kept`` bills without an active payment take the file's payment state."""
    await conn.execute(_UNKEEP, kept, timeout=LONG_TIMEOUT)


async def analyze_bills(conn: asyncpg.Connection) -> None:
    """Refresh the planner's statistics of bills (after many new rows)."""
    await conn.execute("ANALYZE bills", timeout=LONG_TIMEOUT)


def _count(status: str) -> int:
    return int(status.split()[-1])
