"""``gateway bank-sim load``: a bank's load over ISO 8583, reporting throughput and latency percentiles.

Workers share a few connections (many requests in flight on each, as a bank switch does). Each step picks
an operation by the mix weights: an inquiry of some bill; a payment (inquiry, then payment of the total
shown) of a bill not yet used; or the reversal of a payment this run made. Every approved payment and
reversal is appended to ``--record`` as it is answered, so a test can check that nothing answered 00 was
lost, whatever happens to the gateway.
"""
from __future__ import annotations

import asyncio
import json
import random
import ssl
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

from gateway.banksim.client import IsoClient


@dataclass
class LoadPlan:
    concurrency: int = 16
    connections: int = 4
    duration_s: float | None = 10.0
    count: int | None = None  # operations in all; None: until duration_s
    mix: dict[str, float] = field(default_factory=lambda: {"inquiry": 4, "payment": 5, "reversal": 1})
    record: str | None = None
    seed: int = 1


@dataclass
class LoadReport:
    elapsed_s: float = 0.0
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies_ms.values())

    def summary(self) -> dict:
        out: dict[str, Any] = {"elapsed_s": round(self.elapsed_s, 3), "requests": self.requests,
               "throughput_rps": round(self.requests / self.elapsed_s, 1) if self.elapsed_s else 0.0,
               "errors": dict(self.errors), "operations": {}}
        for op, values in sorted(self.latencies_ms.items()):
            out["operations"][op] = {"count": len(values), "codes": dict(self.codes[op]), **percentiles(values)}
        return out

    def render(self) -> str:
        s = self.summary()
        lines = [f"{s['requests']} requests in {s['elapsed_s']:.1f} s: {s['throughput_rps']:.1f} requests/s"]
        for op, o in s["operations"].items():
            codes = " ".join(f"{k}:{v}" for k, v in sorted(o["codes"].items()))
            lines.append(f"  {op:<9} {o['count']:>7}  p50 {o['p50_ms']:7.2f} ms  p95 {o['p95_ms']:7.2f} ms"
                         f"  p99 {o['p99_ms']:7.2f} ms  RC {codes}")
        if s["errors"]:
            lines.append("  errors: " + ", ".join(f"{k} {v}" for k, v in s["errors"].items()))
        return "\n".join(lines)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    if len(values) == 1:
        return {"p50_ms": values[0], "p95_ms": values[0], "p99_ms": values[0]}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 3), "p95_ms": round(q[94], 3), "p99_ms": round(q[98], 3)}


class LoadRun:
    def __init__(self, clients: list[IsoClient], bills: list[tuple[str, str]], plan: LoadPlan,
                 progress: TextIO | None = None):
        self.clients = clients
        self.fresh = list(bills)  # bills not yet paid by this run
        self.all_bills = list(bills)
        self.plan = plan
        self.report = LoadReport()
        self.rng = random.Random(plan.seed)
        self.paid: list[tuple[IsoClient, dict[str, str], str]] = []  # (client, payment request, ntpd)
        self.started = 0
        self.deadline = 0.0
        self.record = open(plan.record, "a", buffering=1) if plan.record else None
        self.progress = progress

    def _next_op(self) -> str | None:
        if self.plan.count is not None and self.started >= self.plan.count:
            return None
        if self.plan.duration_s is not None and time.monotonic() >= self.deadline:
            return None
        self.started += 1
        ops, weights = zip(*self.plan.mix.items())
        op = self.rng.choices(ops, weights)[0]
        if op == "reversal" and not self.paid:
            op = "payment"
        if op == "payment" and not self.fresh:
            op = "inquiry"
        return op

    async def run(self) -> LoadReport:
        self.deadline = time.monotonic() + (self.plan.duration_s or 0)
        t0 = time.monotonic()
        ticker = asyncio.create_task(self._tick()) if self.progress else None
        await asyncio.gather(*(self._worker(i) for i in range(self.plan.concurrency)))
        self.report.elapsed_s = time.monotonic() - t0
        if ticker:
            ticker.cancel()
        if self.record:
            self.record.close()
        return self.report

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(2)
            print(f"load: {self.report.requests} requests answered", file=self.progress, flush=True)

    async def _worker(self, index: int) -> None:
        client = self.clients[index % len(self.clients)]
        while (op := self._next_op()) is not None:
            if client.closed.is_set():
                self.report.errors["connection closed"] += 1
                await asyncio.sleep(0.05)
                continue
            try:
                if op == "inquiry":
                    tax, bill = self.rng.choice(self.all_bills)
                    await self._timed("inquiry", client, client.inquiry(tax, bill))
                elif op == "payment":
                    await self._pay(client, *self.fresh.pop())
                else:
                    await self._reverse(*self.paid.pop(self.rng.randrange(len(self.paid))))
            except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
                self.report.errors[type(exc).__name__] += 1

    async def _timed(self, op: str, client: IsoClient, request: dict[str, str]) -> dict[str, str]:
        t0 = time.perf_counter()
        answer = await client.request(request)
        self.report.latencies_ms[op].append((time.perf_counter() - t0) * 1000)
        self.report.codes[op][answer.get("39", "??")] += 1
        return answer

    async def _pay(self, client: IsoClient, tax: str, bill: str) -> None:
        inquiry = await self._timed("inquiry", client, client.inquiry(tax, bill))
        if inquiry.get("39") != "00":
            return
        request = client.payment(tax, bill, int(inquiry["4"]))
        answer = await self._timed("payment", client, request)
        if answer.get("39") == "00":
            self.paid.append((client, request, answer["47"]))
            if self.record:
                self.record.write(f"paid,{answer['47']},{tax},{bill},{request['11']},{request['7']}\n")

    async def _reverse(self, client: IsoClient, payment: dict[str, str], ntpd: str) -> None:
        answer = await self._timed("reversal", client, client.reversal(payment))
        if answer.get("39") == "00" and self.record:
            self.record.write(f"reversed,{ntpd},,,{payment['11']},{payment['7']}\n")


async def run_load(host: str, port: int, *, bank: str, framing_name: str, mac_key: bytes | None,
                   bills: list[tuple[str, str]], plan: LoadPlan, as_json: bool = False,
                   timeout_s: float = 30.0, tls: ssl.SSLContext | None = None) -> LoadReport:
    """``timeout_s``: how long each request waits for its answer (``bank-sim load --timeout``); ``tls``: connect
    over TLS with this context (``bank-sim load --tls…``)."""
    clients = [IsoClient(host, port, bank=bank, framing_name=framing_name, mac_key=mac_key, timeout_s=timeout_s)
               for _ in range(max(1, min(plan.connections, plan.concurrency)))]
    for client in clients:
        await client.connect(ssl=tls)
    try:
        report = await LoadRun(clients, bills, plan, progress=sys.stderr).run()
    finally:
        for client in clients:
            await client.close()
    print(json.dumps(report.summary()) if as_json else report.render())
    return report
