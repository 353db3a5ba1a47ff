"""``gateway relief list [--date D]`` and ``gateway relief check NOP YEAR [--date D]``: the relief programs of
the configuration, and which one applies to a PBB-P2 bill (gateway/service/relief_check.py)."""
from __future__ import annotations

import argparse

from gateway.cli.common import CommandError, parse_date, run_migrated
from gateway.config import Config
from gateway.domain.relief import ReliefProgram, active_on


def _day(config: Config, args: argparse.Namespace):
    """``--date``, else the region's business date now (the cut-off moves it, as for a bank's message)."""
    if args.date:
        return parse_date(args.date)
    from gateway.clock import Clock
    from gateway.domain.business_day import business_date

    return business_date(Clock(config.clock_offset_seconds).now(), config.region.tz, config.region.cutoff_time)


def _percent(value) -> str:
    return f"{value.normalize():f}%"


def _row(program: ReliefProgram, active: bool) -> tuple[str, ...]:
    return (program.id, program.starts.isoformat(), program.ends.isoformat(),
            ",".join(sorted(t.lower() for t in program.taxes)), program.years_text(),
            ",".join(sorted(program.kecamatan)) or "all", _percent(program.principal_discount),
            _percent(program.penalty_waiver), "yes" if active else "no")


_HEAD = ("ID", "FROM", "TO", "TAXES", "TAX YEARS", "KECAMATAN", "DISCOUNT", "WAIVER", "ACTIVE")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def relief_list(config: Config, args: argparse.Namespace) -> int:
    day = _day(config, args)
    if not config.relief:
        print(f"no relief programs configured ({config.source})")
        return 0
    print(f"relief programs of {config.source}; ACTIVE on business date {day.isoformat()}")
    active = active_on(config.relief, day)
    print(_table([_HEAD, *(_row(p, p in active) for p in config.relief)]))
    print()
    for p in config.relief:
        print(f"{p.id}: {p.name} — {p.decree}")
    return 0


def _rupiah(value: int) -> str:
    from gateway.proofs.text import rupiah

    return rupiah(value)


def relief_check(config: Config, args: argparse.Namespace) -> int:
    """Exit 0 when a program applies to the bill, 1 when none does (or the bill is not payable)."""
    from gateway.domain.errors import FormatError
    from gateway.domain.nop import display_nop, in_region, parse_nop, parse_tax_year
    from gateway.service.relief_check import check_pbb

    day = _day(config, args)
    try:
        nop, year = parse_nop(args.nop), parse_tax_year(args.tax_year)
    except FormatError as exc:
        raise CommandError(f"relief check: {exc}", 2) from None
    if not in_region(nop, config.region.code):
        raise CommandError(f"relief check: NOP {args.nop} is not of region {config.region.code}", 2)
    found = run_migrated(config, lambda conn: check_pbb(conn, config.relief, config.penalty_pbb, nop, year, day))
    print(f"NOP {display_nop(nop)}, tax year {year}, business date {day.isoformat()}")
    if not found.candidates:
        print("no relief program matches (window, tax, tax years, kecamatan)")
    for c in found.candidates:
        p = c.program
        amounts = "" if c.discount is None else \
            f"  discount {_rupiah(c.discount)}, penalty waived {_rupiah(c.penalty_waived or 0)}"
        print(f"  matches {p.id} ({_percent(p.principal_discount)} discount, {_percent(p.penalty_waiver)} waiver)"
              f"{amounts}")
    if found.status is None:
        print("no such bill in the database: of the matching programs, the one that reduces its total most applies")
        return 0 if found.candidates else 1
    if found.gross is None or found.due is None:
        print(f"the bill is {found.status}: nothing is due, no program applies")
        return 1
    gross, due = found.gross, found.due
    print(f"due without relief: principal {_rupiah(gross.principal)} + penalty {_rupiah(gross.penalty)}"
          f" ({gross.months_late} month(s) late) = {_rupiah(gross.total)}")
    if due.relief is None:
        print("applies: none")
        return 1
    print(f"applies: {due.relief.id} — {due.relief.name} ({due.relief.decree})")
    print(f"due with relief: principal {_rupiah(due.principal)} (discount {_rupiah(due.discount)})"
          f" + penalty {_rupiah(due.penalty)} (waived {_rupiah(due.penalty_waived)}) = {_rupiah(due.total)}")
    return 0
