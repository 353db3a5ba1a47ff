"""``gateway staff add|token|revoke``: staff accounts and API tokens, each change audited as "cli"."""
from __future__ import annotations

import argparse
import sys

from gateway.cli.common import CommandError, run_migrated
from gateway.config import Config


def _password(args: argparse.Namespace) -> str:
    """From ``--password-stdin`` (scripts), else prompted twice without echo (spec: at least MIN_LENGTH)."""
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


def staff(config: Config, args: argparse.Namespace) -> int:
    from gateway.staff import accounts

    if not accounts.USERNAME.fullmatch(args.user):
        raise CommandError(f"staff {args.action}: USER must be 1-64 characters of letters, digits and . _ @ -", 2)
    # Asked before connecting: a mistyped password costs no database work.
    password = _password(args) if args.action == "add" else ""

    async def change(conn) -> str | None:
        # The change and its audit row commit together, or neither does.
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
            await accounts.audit(conn, "cli", "staff.revoke", args.user, {"tokens": tokens, "sessions": sessions})
            return f"revoked {tokens} token(s) and {sessions} session(s) of {args.user}"

    try:
        result = run_migrated(config, change)
    except accounts.StaffError as exc:
        raise CommandError(f"staff {args.action}: {exc}") from None
    if args.action == "token":
        # The token alone on stdout, so that `TOKEN=$(gateway staff token ani)` works.
        assert result is not None  # change() returns the issued token for "token"
        sys.stdout.write(result + "\n")
        sys.stdout.flush()
    elif args.action == "add":
        print(f"staff user {args.user} added with role {args.role}", file=sys.stderr)
    else:
        print(result, file=sys.stderr)
    return 0
