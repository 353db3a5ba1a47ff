"""What every command module shares: the error that ends a command, the services or the owner's migrated
connection (both built by gateway.bootstrap), dates and output files."""
from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from gateway.config import Config

if TYPE_CHECKING:
    import datetime

    import asyncpg

    from gateway.bootstrap import Services
    from gateway.bootstrap import migrated as MigratedConnection

T = TypeVar("T")


class CommandError(Exception):
    """A failed operation: printed on one line, exit 1 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def migrated(config: Config) -> MigratedConnection:
    """A connection as the owner with the schema brought current (gateway.bootstrap.migrated)."""
    from gateway.bootstrap import migrated as _migrated  # not loaded by `gateway --help`

    return _migrated(config)


def owner_connection(config: Config) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A fresh owner connection without migrating (gateway.bootstrap.owner_connection)."""
    from gateway.bootstrap import owner_connection as _owner

    return _owner(config)


def run_services(config: Config, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work(services)`` on the command line's object graph (gateway.bootstrap, operator pool)."""
    from gateway.bootstrap import open_services

    async def run() -> T:
        async with open_services(config, operator=True) as services:
            return await work(services)

    return asyncio.run(run())


def run_migrated(config: Config, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work(conn)`` to completion on a ``migrated`` connection: a command's whole database part."""

    async def run() -> T:
        async with migrated(config) as conn:
            return await work(conn)

    return asyncio.run(run())


def parse_date(text: str) -> datetime.date:
    """A business date argument: exactly YYYY-MM-DD (``date.fromisoformat`` alone also takes 20260101)."""
    import datetime
    import re

    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    raise CommandError(f"DATE must be a date YYYY-MM-DD: {text!r}", 2)


def write_output(text: str, output: str | None) -> None:
    """A report or export: to ``--output FILE`` when given, else stdout (spec: reports go to stdout)."""
    if output:
        try:
            # newline="": CSV line ends are the report's own (\r\n), not translated.
            with open(output, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as exc:
            raise CommandError(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
