"""Command line (spec/operations.md "Command line"): each command calls one service function.

``parser`` holds the arguments; one module per command group holds its handlers; ``common`` holds the one
way to reach the database (``migrated``: the owner's connection, schema current). Exit codes: 0 success,
1 a failed operation, 2 a usage or configuration error, with one clear line on stderr.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from gateway.cli import bank_sim, bills, db, demo, inquiry, proof, relief, serve, settle, staff
from gateway.cli.common import CommandError
from gateway.cli.parser import build_parser
from gateway.config import Config, ConfigError, load_config
from gateway.runtime import run_fast

__all__ = ["CommandError", "build_parser", "main", "run_fast"]

Handler = Callable[[Config, argparse.Namespace], int]

# (command, action) → handler; action is None for commands without subcommands.
_HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("serve", None): serve.serve_command,
    ("db", "migrate"): db.db_migrate,
    ("db", "start"): db.db_start,
    ("db", "stop"): db.db_stop,
    ("bills", "import"): bills.bills_import,
    ("demo", "seed"): demo.demo_seed,
    ("demo", "run"): demo.demo_run,
    ("inquiry", None): inquiry.inquiry,
    ("relief", "list"): relief.relief_list,
    ("relief", "check"): relief.relief_check,
    ("keys", "init"): proof.keys,
    ("keys", "rotate"): proof.keys,
    ("proof", "verify"): proof.proof_verify,
    **{("bank-sim", action): bank_sim.bank_sim for action in bank_sim.ACTIONS},
    ("settle", "close"): settle.settle_close,
    ("settle", "report"): settle.settle_report,
    ("payments", "export"): settle.payments_export,
    ("recon", "import"): settle.recon_import,
    **{("staff", action): staff.staff for action in ("add", "token", "revoke")},
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    handler = _HANDLERS[(args.command, getattr(args, "action", None))]
    try:
        return handler(config, args) or 0
    except CommandError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the edge: one line, not a traceback
        from gateway.bootstrap import EmbeddedPostgresError

        if isinstance(exc, EmbeddedPostgresError):
            print(f"gateway: embedded PostgreSQL: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) or type(exc).__module__.startswith("asyncpg"):
            print(f"gateway: database: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise
