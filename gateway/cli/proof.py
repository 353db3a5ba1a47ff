"""``gateway keys init|rotate`` and ``gateway proof verify``: the proof signing keys, and an offline check of a
saved payment proof or Surat Keterangan Lunas (both are signed documents of one scheme, verified alike).

Neither touches the database: the keys are files in ``[proof] key_dir``.
"""
from __future__ import annotations

import argparse
import sys

from gateway.cli.common import CommandError
from gateway.config import Config


def keys(config: Config, args: argparse.Namespace) -> int:
    from gateway.proofs.commands import keys_init, keys_rotate
    from gateway.proofs.keys import KeyStoreError

    try:
        print((keys_init if args.action == "init" else keys_rotate)(config.proof.key_dir), file=sys.stderr)
    except KeyStoreError as exc:
        raise CommandError(f"keys: {exc}") from None
    return 0


def proof_verify(config: Config, args: argparse.Namespace) -> int:
    from gateway.proofs.commands import verify_file

    try:
        valid, text = verify_file(args.file, args.public_key, args.keys)
    except ValueError as exc:  # an unreadable file or key: a usage error, not an invalid proof
        raise CommandError(f"proof verify: {exc}", 2) from None
    print(text)
    return 0 if valid else 1
