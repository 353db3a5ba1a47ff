"""``gateway bills import pbb|bphtb FILE``: bill CSVs into the database."""
from __future__ import annotations

import argparse
import sys

from gateway.cli.common import CommandError, run_migrated
from gateway.config import Config


def bills_import(config: Config, args: argparse.Namespace) -> int:
    from gateway.bills.importer import ImportFileError, import_file

    try:
        report = run_migrated(config, lambda conn: import_file(
            conn, args.tax, args.file, strict=args.strict, region_code=config.region.code, err=sys.stderr))
    except ImportFileError as exc:  # an unusable file (not one bad row): a usage error
        raise CommandError(str(exc), 2) from None
    return report.exit_code
