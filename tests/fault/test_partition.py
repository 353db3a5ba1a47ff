"""The database path cut under load through the fault proxy (spec/domain.md invariant 3): a black hole
(packets dropped), resets, and the half-open connections a partition leaves behind.

Each test: bank connections inquire and pay their own bills; the fault comes; the bank must get RC 91 (HTTP:
503 with response_code "91"), never 96, never silence, each within the bound; the fault heals and the same
gateway process approves payments again; then every approval repeated is answered as stored, every 91 repeated
settles to 00, and the database and the message log are checked against what the bank was told.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from .harness import (
    Bank,
    Load,
    Report,
    check_answers,
    check_database,
    check_message_log,
    check_repeats,
    seed_bills,
    wait_recovery,
)

pytestmark = pytest.mark.integration

FAULT_S = 3.0


async def fault_under_load(name: str, gw, db, proxy, *, channel: str, fault: str, frozen: str = "resume") -> None:
    report = Report(name)
    bills = await seed_bills(db, 4000)
    load_bills, probe_bills = bills[:3500], bills[3500:]
    bank = await Bank(gw, iso_connections=4 if channel == "iso" else 0, http=channel == "http").open()
    try:
        load = Load(bank, load_bills, workers=8, channel=channel)
        await load.until_approved(50)
        fault_at = time.monotonic()
        getattr(proxy, fault)()
        await asyncio.sleep(FAULT_S)
        healed_at = time.monotonic()
        proxy.heal(frozen)
        await wait_recovery(report, bank, probe_bills, healed_at, channel)
        await load.stop()

        check_answers(report, bank.exchanges, allowed={"00", "91"})
        during = [ex for ex in bank.exchanges if fault_at + 0.05 < ex.sent and ex.answered is not None
                  and ex.answered < healed_at]
        report.check(bool(during) and all(ex.rc == "91" for ex in during),
                     f"answers to requests sent while the database was away must all be 91: "
                     f"{sorted({ex.rc for ex in during})} ({len(during)} answers)")
        in_fault = [ex for ex in bank.exchanges if fault_at <= ex.sent < healed_at]
        report.figures.update(fault=fault, fault_s=FAULT_S, requests_during_fault=len(in_fault),
                              rc91_during_fault=sum(ex.rc == "91" for ex in in_fault))
        report.check(gw.proc.poll() is None, "the gateway process exited")
        await check_repeats(report, bank)
        await check_database(report, db, bank)
        await check_message_log(report, db, bank)
    finally:
        await bank.close()
    report.assert_clean()


async def test_black_hole_mid_load_iso(proxied_gateway, db, proxy):
    await fault_under_load("black hole, ISO", proxied_gateway, db, proxy, channel="iso", fault="blackhole")


async def test_black_hole_mid_load_http(proxied_gateway, db, proxy):
    await fault_under_load("black hole, HTTP", proxied_gateway, db, proxy, channel="http", fault="blackhole")


async def test_reset_mid_load_iso(proxied_gateway, db, proxy):
    await fault_under_load("reset, ISO", proxied_gateway, db, proxy, channel="iso", fault="reset")


async def test_half_open_after_heal_iso(proxied_gateway, db, proxy):
    """The partition ends, but the connections it caught stay dead without a word (no FIN, no RST): the
    gateway must not wait on them, and must recover on new ones."""
    await fault_under_load("half-open after heal, ISO", proxied_gateway, db, proxy, channel="iso",
                           fault="blackhole", frozen="dead")
