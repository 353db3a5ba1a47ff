"""``gateway settle close|report``, ``gateway payments export`` and ``gateway recon import``: the work on a
closed (or closing) business date. Reports go to stdout unless ``--output FILE``; diagnostics to stderr."""
from __future__ import annotations

import argparse
import sys

from gateway.cli.common import CommandError, parse_date, run_migrated, run_services, write_output
from gateway.config import Config


def _operator(args: argparse.Namespace) -> str:
    """Who acts: ``--operator`` (settle close), else the login name; empty when there is none (close refuses
    then)."""
    import getpass

    if getattr(args, "operator", ""):
        return args.operator
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name: refused by close_business_date
        return ""


def _actor(args: argparse.Namespace, fallback: str = ""):
    from gateway.staff.support import Actor

    return Actor(username=_operator(args) or fallback, via="cli")


def settle_close(config: Config, args: argparse.Namespace) -> int:
    from gateway.settlement.close import SettlementError
    from gateway.settlement.report import render_csv

    day = parse_date(args.date)
    actor = _actor(args)
    if not actor.username:
        raise CommandError("settle close: an operator name is required to close a business date")

    async def close(services):
        # "now" is read once connected: the cut-off check is against the moment the close really starts.
        # The treasury service closes and writes the audit row, as for the staff API and the console.
        return await services.treasury.close(actor, day, services.ctx.clock.now())

    try:
        result = run_services(config, close)
    except SettlementError as exc:
        raise CommandError(f"settle close: {exc}") from None
    what = "already closed" if result.already_closed else "closed"
    print(f"business date {day.isoformat()} {what} at {result.closed_at.isoformat()} by {result.closed_by}",
          file=sys.stderr)
    write_output(render_csv(day, result.totals, {b.code: b.name for b in config.banks}), args.output)
    return 0


def settle_report(config: Config, args: argparse.Namespace) -> int:
    day = parse_date(args.date)
    actor = _actor(args, fallback="cli")

    async def report_of(services) -> str | bytes:
        # The treasury service renders the statement and audits the read, as for the staff API and console.
        if args.format == "csv":
            return await services.treasury.statement_csv(actor, day)
        return await services.treasury.statement_pdf(actor, day)

    report = run_services(config, report_of)
    if isinstance(report, bytes):
        if not args.output and sys.stdout.isatty():
            raise CommandError("settle report: a PDF is not written to a terminal; use --output FILE", 2)
        if args.output:
            with open(args.output, "wb") as out:
                out.write(report)
        else:
            sys.stdout.buffer.write(report)
        return 0
    write_output(report, args.output)
    return 0


def payments_export(config: Config, args: argparse.Namespace) -> int:
    from gateway.settlement.sismiop import sismiop_csv

    day = parse_date(args.date)
    write_output(run_migrated(config, lambda conn: sismiop_csv(conn, day)), args.output)
    return 0


def recon_import(config: Config, args: argparse.Namespace) -> int:
    from gateway.demo.quickstart import demo_serving_config
    from gateway.settlement.errors import ReconFileError
    from gateway.settlement.recon import parse_file, read_file

    day = parse_date(args.date)
    # As the console and the staff API: a bank the gateway does not know has no payments to match, and its
    # items would open for nobody (a mistyped code, most often). Without any bank configured, the demo's.
    if demo_serving_config(config).bank(args.bank) is None:
        raise CommandError(f"recon import: bank {args.bank} is not configured", 2)
    try:
        data = read_file(args.file)
        parse_file(args.file, data, day, args.bank)  # an unusable file fails before any database work
    except ReconFileError as exc:
        raise CommandError(f"recon import: {exc}", 2) from None
    result = run_services(config, lambda services: services.treasury.reconcile(
        _actor(args, fallback="cli"), day, args.bank, data, source=args.file))
    write_output(result.csv, args.output)
    print(result.summary(), file=sys.stderr)
    return result.exit_code
