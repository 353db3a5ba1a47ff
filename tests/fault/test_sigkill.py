"""SIGKILL of ``gateway serve`` under ISO 8583 and HTTP load: every 00 the bank received is a payment exactly
once, its answer row is in the message log (the answer of an approval is durable with the payment: a message
log that loses approvals' answers in a crash breaks invariant 7), a repeat of each approval to the restarted
gateway is answered as stored, and a repeat of each request the kill left unanswered settles it to 00."""
from __future__ import annotations

import asyncio
import signal

import pytest

from .harness import Bank, Load, Report, check_database, check_message_log, check_repeats, seed_bills

pytestmark = pytest.mark.integration


async def test_sigkill_mid_load_iso_and_http(make_gateway, db):
    report = Report("SIGKILL, ISO + HTTP")
    gw = make_gateway()
    bills = await seed_bills(db, 3000)
    bank = await Bank(gw, iso_connections=4, http=True).open()
    try:
        iso = Load(bank, bills[:1500], workers=6, channel="iso")
        http = Load(bank, bills[1500:], workers=4, channel="http")
        await iso.until_approved(150)  # the two loads share one Bank: approvals of both count
        assert gw.stop(signal.SIGKILL) == -signal.SIGKILL
        await asyncio.gather(iso.stop(), http.stop())
        before = [ex for ex in bank.exchanges if ex.rc is not None]
        cut = [ex for ex in bank.exchanges if ex.rc is None]
        report.check(all(ex.rc == "00" for ex in before),
                     f"answers before the kill not all 00: {sorted({ex.rc for ex in before})}")
        report.figures.update(requests_before_kill=len(bank.exchanges),
                              approvals_before_kill=sum(ex.kind == "payment" and ex.rc == "00" for ex in before),
                              unanswered_at_kill=len(cut))
        await asyncio.to_thread(gw.start)
        await bank.reconnect()
        await check_repeats(report, bank)
        await check_database(report, db, bank)
        await check_message_log(report, db, bank, approvals_only=True)
    finally:
        await bank.close()
    report.assert_clean()
