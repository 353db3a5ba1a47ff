"""``gateway demo seed`` and ``gateway demo run``: the synthetic region, and a newcomer's first run."""
from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.cli.common import CommandError, run_migrated
from gateway.cli.serve import serve_until_stopped
from gateway.config import Config


def _check_objects(objects: int) -> None:
    # Checked before any database work: a bad count is a usage error, not a half-seeded region.
    if not 1 <= objects <= 10_000_000:
        raise CommandError("--objects must be 1..10000000", 2)


def demo_seed(config: Config, args: argparse.Namespace) -> int:
    from gateway.demo.seed import seed_region

    _check_objects(args.objects)
    summary = run_migrated(config, lambda conn: seed_region(
        conn, objects=args.objects, region_code=config.region.code, seed=args.seed, err=sys.stderr))
    print(summary)
    return 0


def demo_run(config: Config, args: argparse.Namespace) -> int:
    from gateway.demo.quickstart import demo_serving_config, run_quickstart

    _check_objects(args.objects)
    # The quickstart migrates through open_services (it needs the engine too, not only the owner).
    asyncio.run(run_quickstart(config, objects=args.objects))
    if args.no_serve:
        return 0
    served = demo_serving_config(config)
    host_port = served.iso8583.listen
    print(f"\nServing ISO 8583 on {host_port} for bank(s) {', '.join(b.code for b in served.banks)}; Ctrl-C stops."
          f"\nIn another terminal: gateway bank-sim inquiry pbb 32.75.010.001.001-0001.0 2026", file=sys.stderr)
    return serve_until_stopped(served, args.config)
