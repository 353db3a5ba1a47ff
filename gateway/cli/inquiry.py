"""``gateway inquiry pbb|bphtb BILL``: one bill's answer, from the command line instead of a bank channel."""
from __future__ import annotations

import argparse
import asyncio

from gateway.config import Config


def inquiry(config: Config, args: argparse.Namespace) -> int:
    # The same engine the bank channels use (open_services migrates, then serves from the runtime pool),
    # so the answer and the recorded quote are exactly what a bank would get.
    from gateway.bootstrap import open_services
    from gateway.inquiry.render import render_inquiry
    from gateway.service.requests import BphtbInquiry, PbbInquiry

    async def run():
        async with open_services(config) as services:
            if args.tax == "pbb":
                return await services.engine.inquire_pbb(
                    PbbInquiry(bank=args.bank or None, nop=args.bill, tax_year=args.tax_year or "", key=None))
            return await services.engine.inquire_bphtb(
                BphtbInquiry(bank=args.bank or None, registration_number=args.bill, key=None))

    result = asyncio.run(run())
    print(render_inquiry(result))
    return 0 if result.rc == "00" else 1
