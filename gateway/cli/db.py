"""``gateway db migrate|start|stop``: the schema and the embedded PostgreSQL."""
from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.cli.common import CommandError, migrated
from gateway.config import Config


def db_migrate(config: Config, args: argparse.Namespace) -> int:
    owner = migrated(config)

    async def run() -> None:
        async with owner:  # migrating is the whole command
            pass

    asyncio.run(run())
    for m in owner.applied:
        print(f"applied {m.version:04d}_{m.name}", file=sys.stderr)
    print("schema is current" if not owner.applied else f"applied {len(owner.applied)} migration(s)",
          file=sys.stderr)
    return 0


def _embedded(config: Config):
    from gateway.bootstrap import embedded_cluster

    # With a url configured the embedded cluster is never used: starting it would only mislead.
    if config.database.url:
        raise CommandError("a database url is configured; the embedded PostgreSQL is not used", 2)
    return embedded_cluster(config)


def db_start(config: Config, args: argparse.Namespace) -> int:
    print(_embedded(config).start())  # the DSN, for scripts and psql
    return 0


def db_stop(config: Config, args: argparse.Namespace) -> int:
    _embedded(config).stop()
    return 0
