"""``gateway bills import pbb|bphtb FILE``: load a bill CSV (spec/operations.md "CSV files").

The file is streamed: each row is validated as it is read and valid rows go straight into a binary
COPY to a session-level staging table (PostgreSQL works on them while Python reads on), so memory stays
bounded by the keys seen (for duplicate detection), not by the rows. Staging locks no bill. Only when the
whole file is read and validated are the staged rows upserted, in batches of a few thousand bills in key
order, each its own short transaction (gateway.bills.loader): payments of the bills being imported go on
meanwhile. With ``strict`` nothing is upserted when any row is invalid.

A batch that fails (a database error, the connection lost, the process interrupted) leaves the batches
before it loaded and the rest not: stderr then says how far the import got, and the exit code is 1.
Importing the same file again is safe and completes the load (rows already loaded are compared, not
rewritten).

stderr (``err``): one line per bad column ``FILE:LINE: COLUMN: reason``, one per conflict
``FILE:LINE: conflict: reason`` (in line order), progress, a ``FILE: stopped ...`` line when the load
did not complete, and last the summary ``loaded N, updated N, invalid N, conflicts N``.
"""
from __future__ import annotations

import codecs
import csv
import operator
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

import asyncpg

from gateway.bills.loader import (
    BATCH_ROWS,
    Batch,
    LoadResult,
    bulk_transaction,
    copy_to_staging,
    create_staging,
    drop_staging,
    plan_batches,
    upsert_batches,
)
from gateway.bills.rows import validator_for

PROGRESS_EVERY = 100_000      # plain progress lines (stderr not a terminal)
_BAR_WIDTH = 30
_UTF8_CHUNK = 1 << 20


class ImportFileError(Exception):
    """The file itself is unusable (missing, unreadable, not UTF-8, bad header, broken quoting)."""


@dataclass
class ImportReport:
    loaded: int = 0
    updated: int = 0
    invalid: int = 0
    conflicts: int = 0
    # Set when the load stopped before its last batch: why (the batches before it are loaded).
    stopped: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.invalid == 0 and self.conflicts == 0 and self.stopped is None else 1

    def summary(self) -> str:
        return (f"loaded {self.loaded}, updated {self.updated}, invalid {self.invalid}, "
                f"conflicts {self.conflicts}")


def check_utf8(path: str) -> None:
    """ImportFileError unless the whole file decodes as UTF-8 (naming the first bad line)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_UTF8_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # The decoder may hold back up to 3 bytes of the previous chunk; close enough to
                    # count the line by the bytes of this chunk before the error.
                    line += chunk.count(b"\n", 0, max(exc.start, 0))
                    raise ImportFileError(f"{path}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})") from None
                line += chunk.count(b"\n")
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ImportFileError(f"{path}:{line}: not UTF-8 (truncated character at end of file)") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_header(path: str, reader, columns: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """The header line of a CSV reader and each expected column's index; ImportFileError when the file is
    empty, malformed at line 1, or has a wrong header. Shared by every CSV the gateway reads."""
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: empty file, expected a header line") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}:1: malformed CSV: {exc}") from None
    return header, check_header(path, header, columns)


def check_header(path: str, header: list[str], columns: tuple[str, ...]) -> list[int]:
    """For each expected column, its index in the file's rows; ImportFileError for a wrong header."""
    names = [h.strip() for h in header]
    problems = []
    unknown = [n for n in names if n not in columns]
    if unknown:
        problems.append("unknown column(s) " + ", ".join(repr(n) for n in unknown))
    missing = [c for c in columns if c not in names]
    if missing:
        problems.append("missing column(s) " + ", ".join(missing))
    duplicated = sorted({n for n in names if names.count(n) > 1 and n in columns})
    if duplicated:
        problems.append("duplicate column(s) " + ", ".join(duplicated))
    if problems:
        raise ImportFileError(f"{path}:1: wrong header: {'; '.join(problems)} "
                              f"(expected {','.join(columns)})")
    return [names.index(c) for c in columns]


class _Progress:
    """A one-line bar on a terminal (redrawn with \\r), plain lines every PROGRESS_EVERY rows elsewhere."""

    def __init__(self, err: TextIO, path: str, total_bytes: int) -> None:
        self.err = err
        self.path = path
        self.total = max(total_bytes, 1)
        try:
            self.tty = err.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.position = 0           # characters consumed (terminal bar only)
        self.rows = 0
        self._drawn = False
        self._last_draw = 0.0
        self._last_line = -1

    def lines(self, f):
        """The file's lines, counting how much has been read (only needed for the bar)."""
        if not self.tty:
            yield from f
            return
        for text in f:
            self.position += len(text)
            yield text

    def tick(self, rows: int) -> int:
        """Progress at ``rows`` rows read; returns the row count at which to call again."""
        self.rows = rows
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.1:
                self._draw()
                self._last_draw = now
            return rows + 4096
        self._line()
        return rows + PROGRESS_EVERY

    def message(self, text: str) -> None:
        if self._drawn:
            self.err.write("\r\x1b[K")
            self._drawn = False
        self.err.write(text + "\n")

    def done(self) -> None:
        if self.tty:
            self.position = self.total
            self._draw()
            self.err.write("\n")
            self._drawn = False
        elif self._last_line != self.rows:
            self._line()
        self.err.flush()

    def _line(self) -> None:
        self.err.write(f"{self.path}: {self.rows} rows read\n")
        self._last_line = self.rows

    def _draw(self) -> None:
        fraction = min(self.position / self.total, 1.0)
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        self.err.write(f"\r{self.path}: [{bar}] {fraction:4.0%} {self.rows:,} rows")
        self.err.flush()
        self._drawn = True


# A batch that fails for one of these ends the import with a report (exit 1); anything else (a bug,
# KeyboardInterrupt, cancellation) is reported on stderr too and then propagates.
_LOAD_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


async def import_file(conn: asyncpg.Connection, tax: str, path: str, *, strict: bool, region_code: str,
                      err: TextIO, rows_per_batch: int = BATCH_ROWS,
                      after_batch: Callable[[Batch], Awaitable[None]] | None = None) -> ImportReport:
    """Validate and load the bill CSV at ``path``; ImportFileError when the file is unusable.

    ``conn`` must not be in a transaction: the load commits batch by batch. ``after_batch`` is awaited
    after each batch commits (the import then holds no bill lock)."""
    if conn.is_in_transaction():
        raise RuntimeError("import_file commits batch by batch: call it outside a transaction")
    validator = validator_for(tax, region_code)
    columns = validator.columns
    check_utf8(path)
    try:
        size = os.path.getsize(path)
        f = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    report = ImportReport()
    progress = _Progress(err, path, size)
    with f:
        reader = csv.reader(progress.lines(f), strict=True)
        header, positions = read_header(path, reader, columns)
        order = {name.strip(): i for i, name in enumerate(header)}
        pick = operator.itemgetter(*positions)
        width = len(header)
        check = validator.check

        def records():
            """Valid staging records, reporting bad rows on the way (a generator COPY consumes)."""
            previous_end = reader.line_num
            rows = 0
            next_tick = 4096 if progress.tty else PROGRESS_EVERY
            try:
                for row in reader:
                    line = previous_end + 1
                    previous_end = reader.line_num
                    if not row:
                        continue        # an empty line
                    rows += 1
                    if rows == next_tick:
                        next_tick = progress.tick(rows)
                    if len(row) != width:
                        report.invalid += 1
                        progress.message(f"{path}:{line}: row: has {len(row)} fields, the header has {width}")
                        continue
                    record, errors = check(pick(row), line)
                    if errors:
                        report.invalid += 1
                        errors.sort(key=lambda e: order.get(e[0], -1))
                        for column, reason in errors:
                            progress.message(f"{path}:{line}: {column}: {reason}")
                        continue
                    if strict and report.invalid:
                        continue        # nothing will be loaded: stop feeding COPY, keep reporting
                    yield record
            except csv.Error as exc:
                raise ImportFileError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
            progress.rows = rows
            progress.done()

        result = LoadResult()
        staged: int | None = None       # set once the whole file is staged
        try:
            # Staging: the whole file, validated, before the first batch commits (--strict decides here).
            await create_staging(conn, session=True)
            async with bulk_transaction(conn):
                staged = await copy_to_staging(conn, records())
            if not (strict and report.invalid):      # --strict with invalid rows: nothing is loaded
                batches = await plan_batches(conn, rows_per_batch)
                await upsert_batches(conn, validator.tax, batches, result, after_batch=after_batch)
        except _LOAD_ERRORS as exc:
            if staged is None:
                raise                               # staging failed: nothing is loaded
            report.stopped = f"{type(exc).__name__}: {exc}"
        except BaseException as exc:
            if staged is not None:
                _finish(report, result, staged, path, err, stopped=f"interrupted: {type(exc).__name__}")
            raise
        finally:
            await drop_staging(conn)
    _finish(report, result, staged or 0, path, err, stopped=report.stopped)
    return report


def _finish(report: ImportReport, result: LoadResult, staged: int, path: str, err: TextIO, *,
            stopped: str | None) -> None:
    """Copy the counts of the committed batches into ``report`` and write the conflicts, the stop (if
    any) and the summary."""
    report.loaded, report.updated, report.conflicts = result.loaded, result.updated, len(result.conflicts)
    report.stopped = stopped
    for conflict in sorted(result.conflicts, key=lambda c: c.line):
        err.write(f"{path}:{conflict.line}: conflict: bill has an active payment (NTPD {conflict.ntpd}); "
                  "status and amount kept\n")
    if stopped is not None:
        err.write(f"{path}: stopped after {result.rows_done} of {staged} valid rows ({stopped}); those rows are "
                  "loaded, the rest are not: importing the file again completes the load\n")
    err.write(report.summary() + "\n")
    err.flush()
