"""Bills for the load generator: unpaid, payable ones, read from the gateway's database."""
from __future__ import annotations

from gateway.config import Config
from gateway.store import bills as bill_store
from gateway.store.db import connection


async def unpaid_bills(config: Config, tax: str, limit: int) -> list[tuple[str, str]]:
    taxes = ["PBB", "BPHTB"] if tax == "both" else [tax.upper()]
    async with connection(config) as conn:
        rows = await bill_store.payable_bills(conn, taxes, limit)
    return [(("pbb" if r["tax"] == "PBB" else "bphtb"), r["bill_key"]) for r in rows]
