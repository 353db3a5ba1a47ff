"""Loading validated bill rows: binary COPY into a temporary staging table, then set-based upsert.

Shared by the CSV import (gateway.bills.importer) and the demo seed (gateway.demo.seed). Rows arrive as
tuples in the order of ``gateway.bills.rows.STAGING_COLUMNS``; they must already be valid (the bills
table's CHECK constraints are the last line of defence, not the validation). The statements are in
gateway.store.bill_import; this module decides what runs when and counts what happened.

The import upserts in batches (spec/operations.md "PBB-P2 bills": short transactions of a few thousand
bills): the whole file is staged first in a session-level temporary table (which locks no bill), then
cut into ranges of ``BATCH_ROWS`` keys in key order, each upserted and committed in a transaction of its
own. A bill row is therefore locked only while the batch that holds it runs (a fraction of a second),
never from one batch to the next, and payments of the bills being imported go on meanwhile. The demo seed
runs the same statements over the whole staging table in its single transaction.

The gateway owns the payment state of a bill (spec/domain.md): a bill with an active payment keeps its
status, principal and penalty whatever the file says, and a row that disagrees with it is a conflict.
The update decides that per row from its snapshot, which may predate a payment committed while the
statement runs; such rows are recognised (the newest row version says paid, the snapshot's does not)
and kept too. Afterwards the kept rows that disagree with the file are sorted out with a fresh
snapshot: conflicts (active payment) are reported, the others take the file's values. Meanwhile the
batch's transaction holds the row locks of every bill it changed, so no payment or reversal of them can
commit in between. This relies on the payment path locking the bill row and marking it paid (and a
reversal marking it unpaid) in the transaction that adds or removes the active payment
(gateway.store.money).

Imports of one tax are serialized by an advisory lock (held by the import's session across its
batches), so new bills are inserted with a plain INSERT (measured ~20% faster than INSERT ... ON
CONFLICT for a million rows).
"""
from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from gateway.bills.rows import STAGING_COLUMNS
from gateway.store import bill_import
from gateway.store.bill_import import bulk_transaction, create_staging, drop_staging

__all__ = ["BATCH_ROWS", "Batch", "Conflict", "LoadResult", "bulk_transaction", "copy_to_staging", "create_staging",
           "drop_staging", "load_rows", "plan_batches", "upsert_batches", "upsert_staging"]

# The validators' tuples are COPY's rows: their order must be the staging table's.
if STAGING_COLUMNS != bill_import.STAGING_TABLE_COLUMNS:
    raise ImportError("gateway.bills.rows.STAGING_COLUMNS and the staging table's columns disagree")

# Bills per batch transaction of an import. A batch of 2,000 changed rows runs for about 0.1 s, 0.2 s at
# most (docs/performance.md), below the payment path's lock_timeout_ms (500 ms): a payment that meets a
# bill locked by the import waits for one batch at most. Smaller batches cost more commits.
BATCH_ROWS = 2_000

# After this many new rows the planner's statistics of bills are refreshed (the seed: in its
# transaction; an import: after its last batch): the next import's joins (and the payment path) are
# planned from a table that is suddenly 10x bigger.
_ANALYZE_AFTER = 50_000


@dataclass(frozen=True)
class Conflict:
    line: int
    bill_key: str
    ntpd: str


@dataclass(frozen=True)
class Batch:
    """The staging rows with keys first_key..last_key (``rows`` of them), upserted in one transaction."""
    number: int             # 1-based, in key order
    first_key: str
    last_key: str
    rows: int


@dataclass
class LoadResult:
    loaded: int = 0
    updated: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    # A batched load: the batches committed so far and their staging rows.
    batches_done: int = 0
    rows_done: int = 0


async def copy_to_staging(conn: asyncpg.Connection, records: Iterable[tuple]) -> int:
    """Binary COPY of ``records`` (tuples in STAGING_COLUMNS order; a generator streams) into staging."""
    return await bill_import.copy_to_staging(conn, records, STAGING_COLUMNS)


async def upsert_staging(conn: asyncpg.Connection, tax: str, staged: int) -> LoadResult:
    """Insert or update ``bills`` of ``tax`` ("PBB"/"BPHTB") from the ``staged`` staging rows, all in
    the caller's transaction (the demo seed).

    ``updated`` counts rows for existing bills that are not conflicts (changed or not); a row for a
    bill with an active payment that agrees with it is simply updated."""
    tax = tax.upper()
    await bill_import.lock_tax(conn, tax)
    kept = await bill_import.update_from_staging(conn, tax)
    inserted = await bill_import.insert_from_staging(conn, tax)
    conflicts = await _sort_out_kept(conn, kept)
    if inserted >= _ANALYZE_AFTER:
        await bill_import.analyze_bills(conn)
    return LoadResult(loaded=inserted, updated=staged - inserted - len(conflicts), conflicts=conflicts)


async def _sort_out_kept(conn: asyncpg.Connection, kept: list[int]) -> list[Conflict]:
    """Steps 3 and 4 for the rows step 1 kept: the conflicts, in line order."""
    if not kept:
        return []
    conflicts = [Conflict(line, bill_key, ntpd) for line, bill_key, ntpd in await bill_import.conflicts_among(conn, kept)]
    await bill_import.release_kept(conn, kept)
    return conflicts


async def plan_batches(conn: asyncpg.Connection, rows_per_batch: int = BATCH_ROWS) -> list[Batch]:
    """Cut the staged rows into key ranges of ``rows_per_batch`` rows (keys are unique in a staged file)."""
    if rows_per_batch < 1:
        raise ValueError("rows_per_batch must be at least 1")
    async with bulk_transaction(conn):
        await bill_import.index_staging(conn)
        ranges = await bill_import.staged_key_ranges(conn, rows_per_batch)
    return [Batch(n, first_key, last_key, rows) for n, (first_key, last_key, rows) in enumerate(ranges, start=1)]


async def upsert_batches(conn: asyncpg.Connection, tax: str, batches: Iterable[Batch], result: LoadResult, *,
                         after_batch: Callable[[Batch], Awaitable[None]] | None = None) -> None:
    """Upsert the staged rows of ``tax`` batch by batch, each batch committed in its own transaction.

    ``result`` accumulates the counts of the committed batches as they commit, so that the caller still
    knows what is loaded when a batch fails or the work is cancelled (the batches before stay committed;
    loading the same rows again is harmless). ``after_batch`` is awaited after each commit, while this
    connection holds no bill lock. Must not be called inside a transaction."""
    if conn.is_in_transaction():
        raise RuntimeError("a batched load commits batch by batch: call it outside a transaction")
    tax = tax.upper()
    await bill_import.lock_tax_for_session(conn, tax)
    try:
        for batch in batches:
            async with bill_import.batch_transaction(conn):
                kept = await bill_import.update_batch_from_staging(conn, tax, batch.first_key, batch.last_key)
                inserted = await bill_import.insert_batch_from_staging(conn, tax, batch.first_key, batch.last_key)
                if kept:
                    await bill_import.use_nested_loops(conn)
                conflicts = await _sort_out_kept(conn, kept)
            result.loaded += inserted
            result.updated += batch.rows - inserted - len(conflicts)
            result.conflicts.extend(conflicts)
            result.batches_done += 1
            result.rows_done += batch.rows
            if after_batch is not None:
                await after_batch(batch)
        if result.loaded >= _ANALYZE_AFTER:
            await bill_import.analyze_bills(conn)
    finally:
        if not conn.is_closed() and not conn.is_in_transaction():
            with contextlib.suppress(Exception):
                await bill_import.unlock_tax_for_session(conn, tax)


async def load_rows(conn: asyncpg.Connection, tax: str, records: Iterable[tuple]) -> LoadResult:
    """Stage and upsert already-validated records in one transaction (the demo seed's entry point)."""
    async with bulk_transaction(conn):
        await create_staging(conn)
        staged = await copy_to_staging(conn, records)
        return await upsert_staging(conn, tax, staged)
