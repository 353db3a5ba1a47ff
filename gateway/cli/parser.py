"""The command line's arguments (spec/operations.md "Command line"): parsing only, no work.

Every command takes ``--config FILE`` after its command words. The bank simulator's arguments are its own
(``gateway.banksim.commands``), so that its client and its options change together.
"""
from __future__ import annotations

import argparse

from gateway.banksim.commands import add_arguments as banksim_arguments


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

    banksim_arguments(commands.add_parser("bank-sim", help="a bank-side ISO 8583 client and load generator"))

    inquiry = commands.add_parser("inquiry", help="inquire a bill from the command line (no bank channel)")
    inquiry.add_argument("tax", choices=["pbb", "bphtb"])
    inquiry.add_argument("bill", help="NOP (any form) or SSPD registration number")
    inquiry.add_argument("tax_year", nargs="?", help="tax year (PBB)")
    inquiry.add_argument("--bank", default="", help="answer as this bank would be answered, and record its quote"
                         " (default: an operator's look-up, no bank checks, no quote)")
    _config_arg(inquiry)

    relief = commands.add_parser("relief", help="relief programs (discounts, penalty waivers)").add_subparsers(
        dest="action", required=True)
    relief_list = relief.add_parser("list", help="the configured programs and which are active on a date")
    relief_list.add_argument("--date", help="business date YYYY-MM-DD (default: today's)")
    _config_arg(relief_list)
    relief_check = relief.add_parser("check", help="which program a PBB-P2 bill gets on a date, and the amounts")
    relief_check.add_argument("nop", metavar="NOP", help="NOP (any form)")
    relief_check.add_argument("tax_year", metavar="YEAR", help="tax year")
    relief_check.add_argument("--date", help="business date YYYY-MM-DD (default: today's)")
    _config_arg(relief_check)

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
