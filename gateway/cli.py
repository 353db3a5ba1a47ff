"""Command line: argument parsing only; each command calls one service function (spec/operations.md).

Exit codes: 0 success, 1 a failed operation, 2 a usage or configuration error. One clear line on stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from gateway.config import Config, ConfigError, load_config


class CommandError(Exception):
    """A failed operation: printed on one line, exit 1 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="PBB-P2 / BPHTB host-to-host payment gateway")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the ISO 8583 listener(s) until SIGTERM")
    _config_arg(serve)

    db = commands.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    for action, text in (("migrate", "bring the schema to the current version"),
                         ("start", "start the embedded PostgreSQL"),
                         ("stop", "stop the embedded PostgreSQL")):
        _config_arg(db.add_parser(action, help=text))

    bills = commands.add_parser("bills", help="bill data").add_subparsers(dest="action", required=True)
    imp = bills.add_parser("import", help="load a bill CSV")
    imp.add_argument("tax", choices=["pbb", "bphtb"])
    imp.add_argument("file")
    imp.add_argument("--strict", action="store_true", help="load nothing when any row is invalid")
    _config_arg(imp)

    demo = commands.add_parser("demo", help="demo data").add_subparsers(dest="action", required=True)
    seed = demo.add_parser("seed", help="write a synthetic region")
    seed.add_argument("--objects", type=int, default=1000, metavar="N", help="number of tax objects (NOPs)")
    seed.add_argument("--seed", type=int, default=3275, help="random seed (same seed, same data)")
    _config_arg(seed)

    run = demo.add_parser("run", help="migrate, seed the demo region and inquire a demo bill")
    run.add_argument("--objects", type=int, default=2000, metavar="N", help="number of tax objects (NOPs)")
    run.add_argument("--no-serve", action="store_true", help="stop after the demo inquiries")
    _config_arg(run)

    keys = commands.add_parser("keys", help="proof signing keys").add_subparsers(dest="action", required=True)
    for action, text in (("init", "create the first signing key (no-op when one exists)"),
                         ("rotate", "make a new signing key current; old public keys stay published")):
        _config_arg(keys.add_parser(action, help=text))

    proof = commands.add_parser("proof", help="payment proofs").add_subparsers(dest="action", required=True)
    verify = proof.add_parser("verify", help="check a saved proof offline with a public key")
    verify.add_argument("file", help="a saved payment answer or {document, signature} JSON file")
    verify.add_argument("--public-key", help="the raw Ed25519 public key, base64url")
    verify.add_argument("--keys", help="a saved /v1/proofs/keys answer")
    _config_arg(verify)

    from gateway.banksim.commands import add_arguments as banksim_arguments

    banksim_arguments(commands.add_parser("bank-sim", help="a bank-side ISO 8583 client and load generator"))

    inquiry = commands.add_parser("inquiry", help="inquire a bill from the command line (no bank channel)")
    inquiry.add_argument("tax", choices=["pbb", "bphtb"])
    inquiry.add_argument("bill", help="NOP (any form) or SSPD registration number")
    inquiry.add_argument("tax_year", nargs="?", help="tax year (PBB)")
    inquiry.add_argument("--bank", default="", help="bank code the quote is recorded for")
    _config_arg(inquiry)

    settle = commands.add_parser("settle", help="settlement of a business date").add_subparsers(
        dest="action", required=True)
    close = settle.add_parser("close", help="close a business date (after its cut-off) and freeze its totals")
    close.add_argument("date", help="business date YYYY-MM-DD")
    close.add_argument("--operator", default="", help="who closes (default: the login name)")
    close.add_argument("--output", metavar="FILE", help="write the settlement report here instead of stdout")
    _config_arg(close)
    settle_report = settle.add_parser("report", help="the settlement report of a business date")
    settle_report.add_argument("date", help="business date YYYY-MM-DD")
    settle_report.add_argument("--format", choices=["csv", "pdf"], default="csv")
    settle_report.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    _config_arg(settle_report)

    payments = commands.add_parser("payments", help="payments").add_subparsers(dest="action", required=True)
    export = payments.add_parser("export", help="export the payments of a business date")
    export.add_argument("date", help="business date YYYY-MM-DD")
    export.add_argument("--format", choices=["sismiop"], required=True)
    export.add_argument("--output", metavar="FILE", help="write the export here instead of stdout")
    _config_arg(export)

    recon = commands.add_parser("recon", help="bank reconciliation").add_subparsers(dest="action", required=True)
    recon_import = recon.add_parser("import", help="reconcile a bank's file for a business date")
    recon_import.add_argument("date", help="business date YYYY-MM-DD")
    recon_import.add_argument("bank", help="bank code")
    recon_import.add_argument("file", help="the bank's reconciliation CSV")
    recon_import.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    _config_arg(recon_import)

    staff = commands.add_parser("staff", help="staff accounts and API tokens").add_subparsers(
        dest="action", required=True)
    staff_add = staff.add_parser("add", help="create a staff account (password prompted twice)")
    staff_add.add_argument("user", metavar="USER")
    staff_add.add_argument("--role", required=True, choices=["support", "treasury", "admin"])
    staff_add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _config_arg(staff_add)
    staff_token = staff.add_parser("token", help="issue a bearer token (printed alone on stdout)")
    staff_token.add_argument("user", metavar="USER")
    _config_arg(staff_token)
    staff_revoke = staff.add_parser("revoke", help="end all of a user's tokens and sessions")
    staff_revoke.add_argument("user", metavar="USER")
    _config_arg(staff_revoke)
    return parser


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
        from gateway.store.embedded import EmbeddedPostgresError

        if isinstance(exc, EmbeddedPostgresError):
            print(f"gateway: embedded PostgreSQL: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) or type(exc).__module__.startswith("asyncpg"):
            print(f"gateway: database: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise


def run_fast(coroutine) -> int:
    """Run a long-lived server on uvloop where it is installed (it halves the event loop's cost)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _serve(config: Config, args: argparse.Namespace) -> int:
    from gateway.logs import configure
    from gateway.serve import serve

    configure()
    return run_fast(serve(config, args.config))


def _db_migrate(config: Config, args: argparse.Namespace) -> int:
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    async def run() -> int:
        async with connection(config) as conn:
            applied = await migrate(conn)
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}", file=sys.stderr)
        print("schema is current" if not applied else f"applied {len(applied)} migration(s)", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _db_start(config: Config, args: argparse.Namespace) -> int:
    from gateway.store.embedded import EmbeddedPostgres

    if config.database.url:
        raise CommandError("a database url is configured; the embedded PostgreSQL is not used", 2)
    dsn = EmbeddedPostgres(config.state_dir / "postgres").start()
    print(dsn)
    return 0


def _db_stop(config: Config, args: argparse.Namespace) -> int:
    from gateway.store.embedded import EmbeddedPostgres

    if config.database.url:
        raise CommandError("a database url is configured; the embedded PostgreSQL is not used", 2)
    EmbeddedPostgres(config.state_dir / "postgres").stop()
    return 0


def _bills_import(config: Config, args: argparse.Namespace) -> int:
    from gateway.bills.importer import ImportFileError, import_file
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    async def run() -> int:
        async with connection(config) as conn:
            await migrate(conn)
            report = await import_file(conn, args.tax, args.file, strict=args.strict,
                                       region_code=config.region.code, err=sys.stderr)
        return report.exit_code

    try:
        return asyncio.run(run())
    except ImportFileError as exc:
        raise CommandError(str(exc), 2) from None


def _check_objects(objects: int) -> None:
    if not 1 <= objects <= 10_000_000:
        raise CommandError("--objects must be 1..10000000", 2)


def _demo_seed(config: Config, args: argparse.Namespace) -> int:
    from gateway.demo.seed import seed_region
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    _check_objects(args.objects)

    async def run() -> int:
        async with connection(config) as conn:
            await migrate(conn)
            summary = await seed_region(conn, objects=args.objects, region_code=config.region.code,
                                        seed=args.seed, err=sys.stderr)
        print(summary)
        return 0

    return asyncio.run(run())


def _inquiry(config: Config, args: argparse.Namespace) -> int:
    from gateway.bootstrap import open_services
    from gateway.inquiry.render import render_inquiry
    from gateway.payment.requests import BphtbInquiry, PbbInquiry

    async def run() -> int:
        async with open_services(config) as services:
            if args.tax == "pbb":
                result = await services.engine.inquire_pbb(
                    PbbInquiry(bank=args.bank, nop=args.bill, tax_year=args.tax_year or "", key=None))
            else:
                result = await services.engine.inquire_bphtb(
                    BphtbInquiry(bank=args.bank, registration_number=args.bill, key=None))
        print(render_inquiry(result))
        return 0 if result.rc == "00" else 1

    return asyncio.run(run())


def _bank_sim(config: Config, args: argparse.Namespace) -> int:
    from gateway.banksim.commands import BankSimError, run

    try:
        return run(config, args)
    except BankSimError as exc:
        raise CommandError(f"bank-sim: {exc}") from None


def _keys(config: Config, args: argparse.Namespace) -> int:
    from gateway.proofs.commands import keys_init, keys_rotate
    from gateway.proofs.keys import KeyStoreError

    try:
        print((keys_init if args.action == "init" else keys_rotate)(config.proof.key_dir), file=sys.stderr)
    except KeyStoreError as exc:
        raise CommandError(f"keys: {exc}") from None
    return 0


def _proof_verify(config: Config, args: argparse.Namespace) -> int:
    from gateway.proofs.commands import verify_file

    try:
        valid, text = verify_file(args.file, args.public_key, args.keys)
    except ValueError as exc:
        raise CommandError(f"proof verify: {exc}", 2) from None
    print(text)
    return 0 if valid else 1


def _demo_run(config: Config, args: argparse.Namespace) -> int:
    _check_objects(args.objects)
    from gateway.demo.quickstart import demo_serving_config, run_quickstart
    from gateway.logs import configure
    from gateway.serve import serve

    asyncio.run(run_quickstart(config, objects=args.objects))
    if args.no_serve:
        return 0
    served = demo_serving_config(config)
    host_port = served.iso8583.listen
    print(f"\nServing ISO 8583 on {host_port} for bank(s) {', '.join(b.code for b in served.banks)}; Ctrl-C stops."
          f"\nIn another terminal: gateway bank-sim inquiry pbb 32.75.010.001.001-0001.0 2026", file=sys.stderr)
    configure()
    return run_fast(serve(served, args.config))


def _parse_date(text: str):
    import datetime
    import re

    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    raise CommandError(f"DATE must be a date YYYY-MM-DD: {text!r}", 2)


def _write_output(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        except OSError as exc:
            raise CommandError(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _settle_close(config: Config, args: argparse.Namespace) -> int:
    import getpass

    from gateway.clock import Clock
    from gateway.settlement.close import SettlementError, close_business_date
    from gateway.settlement.report import render_csv
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    day = _parse_date(args.date)
    operator = args.operator
    if not operator:
        try:
            operator = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name: refuse below
            operator = ""

    async def run():
        async with connection(config) as conn:
            await migrate(conn)
            return await close_business_date(conn, day, now_utc=Clock(config.clock_offset_seconds).now(),
                                             tz=config.region.tz, cutoff=config.region.cutoff_time,
                                             operator=operator)

    try:
        result = asyncio.run(run())
    except SettlementError as exc:
        raise CommandError(f"settle close: {exc}") from None
    what = "already closed" if result.already_closed else "closed"
    print(f"business date {day.isoformat()} {what} at {result.closed_at.isoformat()} by {result.closed_by}",
          file=sys.stderr)
    _write_output(render_csv(day, result.totals, {b.code: b.name for b in config.banks}), args.output)
    return 0


def _settle_report(config: Config, args: argparse.Namespace) -> int:
    from gateway.settlement.report import settlement_report_csv, settlement_report_pdf
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    day = _parse_date(args.date)

    async def run() -> str | bytes:
        async with connection(config) as conn:
            await migrate(conn)
            if args.format == "csv":
                return await settlement_report_csv(conn, day, config.banks)
            return await settlement_report_pdf(conn, day, config)

    report = asyncio.run(run())
    if isinstance(report, bytes):
        if not args.output and sys.stdout.isatty():
            raise CommandError("settle report: a PDF is not written to a terminal; use --output FILE", 2)
        if args.output:
            with open(args.output, "wb") as out:
                out.write(report)
        else:
            sys.stdout.buffer.write(report)
        return 0
    _write_output(report, args.output)
    return 0


def _payments_export(config: Config, args: argparse.Namespace) -> int:
    from gateway.settlement.sismiop import sismiop_csv
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    day = _parse_date(args.date)

    async def run() -> str:
        async with connection(config) as conn:
            await migrate(conn)
            return await sismiop_csv(conn, day)

    _write_output(asyncio.run(run()), args.output)
    return 0


def _recon_import(config: Config, args: argparse.Namespace) -> int:
    from gateway.settlement.errors import ReconFileError
    from gateway.settlement.recon import parse_file, read_file, reconcile
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    day = _parse_date(args.date)
    try:
        data = read_file(args.file)
        parse_file(args.file, data, day, args.bank)  # an unusable file fails before any database work
    except ReconFileError as exc:
        raise CommandError(f"recon import: {exc}", 2) from None

    async def run():
        async with connection(config) as conn:
            await migrate(conn)
            return await reconcile(conn, day, args.bank, args.file, data)

    result = asyncio.run(run())
    _write_output(result.csv, args.output)
    print(result.summary(), file=sys.stderr)
    return result.exit_code


def _staff_password(args: argparse.Namespace) -> str:
    import getpass

    from gateway.staff.passwords import MIN_LENGTH

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CommandError("staff add: the passwords differ", 2)
    if len(password) < MIN_LENGTH:
        raise CommandError(f"staff add: the password must be at least {MIN_LENGTH} characters", 2)
    return password


def _staff(config: Config, args: argparse.Namespace) -> int:
    from gateway.staff import accounts
    from gateway.store.db import connection
    from gateway.store.migrate import migrate

    if not accounts.USERNAME.fullmatch(args.user):
        raise CommandError(f"staff {args.action}: USER must be 1-64 characters of letters, digits and . _ @ -", 2)
    password = _staff_password(args) if args.action == "add" else ""

    async def run() -> str | None:
        async with connection(config) as conn:
            await migrate(conn)
            async with conn.transaction():
                if args.action == "add":
                    user = await accounts.add_user(conn, args.user, args.role, password)
                    await accounts.audit(conn, "cli", "staff.add", user.username, {"role": user.role})
                    return None
                if args.action == "token":
                    token = await accounts.issue_token(conn, args.user)
                    await accounts.audit(conn, "cli", "staff.token", args.user)
                    return token
                tokens, sessions = await accounts.revoke_user(conn, args.user)
                await accounts.audit(conn, "cli", "staff.revoke", args.user,
                                     {"tokens": tokens, "sessions": sessions})
                return f"revoked {tokens} token(s) and {sessions} session(s) of {args.user}"

    try:
        result = asyncio.run(run())
    except accounts.StaffError as exc:
        raise CommandError(f"staff {args.action}: {exc}") from None
    if args.action == "token":
        sys.stdout.write(result + "\n")
        sys.stdout.flush()
    elif args.action == "add":
        print(f"staff user {args.user} added with role {args.role}", file=sys.stderr)
    else:
        print(result, file=sys.stderr)
    return 0


_HANDLERS: dict[tuple[str, str | None], Callable[[Config, argparse.Namespace], int]] = {
    ("serve", None): _serve,
    ("db", "migrate"): _db_migrate,
    ("db", "start"): _db_start,
    ("db", "stop"): _db_stop,
    ("bills", "import"): _bills_import,
    ("demo", "seed"): _demo_seed,
    ("demo", "run"): _demo_run,
    ("inquiry", None): _inquiry,
    ("keys", "init"): _keys,
    ("keys", "rotate"): _keys,
    ("proof", "verify"): _proof_verify,
    **{("bank-sim", action): _bank_sim for action in ("inquiry", "pay", "reverse", "echo", "load")},
    ("settle", "close"): _settle_close,
    ("settle", "report"): _settle_report,
    ("payments", "export"): _payments_export,
    ("recon", "import"): _recon_import,
    **{("staff", action): _staff for action in ("add", "token", "revoke")},
}
