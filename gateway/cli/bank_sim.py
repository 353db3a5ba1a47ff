"""``gateway bank-sim …``: dispatch to the bank simulator (its arguments and work are ``gateway.banksim``)."""
from __future__ import annotations

import argparse

from gateway.cli.common import CommandError
from gateway.config import Config

# The simulator's subcommands, each dispatched here (the parser's are in gateway.banksim.commands).
ACTIONS = ("inquiry", "pay", "reverse", "echo", "load")


def bank_sim(config: Config, args: argparse.Namespace) -> int:
    from gateway.banksim.commands import BankSimError, run

    try:
        return run(config, args)
    except BankSimError as exc:
        raise CommandError(f"bank-sim: {exc}") from None
