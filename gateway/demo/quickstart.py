"""``gateway demo run``: the first thing a newcomer runs on a fresh machine.

Migrates the (embedded, unless configured) database, seeds the demo region, inquires one demo PBB bill and
one BPHTB registration through the same service calls the bank channels use, then serves the bank channels
(with a demo bank 110 allowed from 127.0.0.1 when no bank is configured) until Ctrl-C.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from gateway.bootstrap import open_services
from gateway.config import BankConfig, Config
from gateway.inquiry.render import render_inquiry
from gateway.service.requests import BphtbInquiry, PbbInquiry
from gateway.store import bills as bill_store
from gateway.store.db import connect


async def run_quickstart(config: Config, objects: int = 2000) -> int:
    from gateway.demo.seed import seed_region

    async with open_services(config) as services:
        # Seeding is operator work: the owner's connection, with the patient timeouts of batch work.
        conn = await connect(config.database, config.database.migrate_url or services.dsn)
        try:
            summary = await seed_region(conn, objects=objects, region_code=config.region.code, seed=3275,
                                        err=sys.stderr)
            print(summary)
            business_year = services.engine.ctx.business_date(services.engine.ctx.clock.now()).year
            pbb = await bill_store.first_unpaid_pbb(conn, business_year)
            bphtb = await bill_store.first_payable_bphtb(conn)
        finally:
            await conn.close()
        if pbb is not None:
            result = await services.engine.inquire_pbb(PbbInquiry(bank=None, nop=pbb["nop"], tax_year=pbb["tax_year"]))
            print("\nPBB-P2 inquiry of a demo bill:\n" + render_inquiry(result))
        if bphtb is not None:
            result = await services.engine.inquire_bphtb(BphtbInquiry(bank=None, registration_number=bphtb))
            print("\nBPHTB inquiry of a demo registration:\n" + render_inquiry(result))
    return 0


# The demo bank signs its HTTP requests with a published demo secret: a demo, never a production setting.
DEMO_BANK = BankConfig(code="110", name="BANK DEMO", allow=("127.0.0.1/32",), api_secret="demo-secret")


def demo_serving_config(config: Config) -> Config:
    """The configuration to serve the demo with: a demo bank when none is configured."""
    return config if config.banks else replace(config, banks=(DEMO_BANK,))
