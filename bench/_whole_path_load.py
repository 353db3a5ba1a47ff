"""The load side of bench/whole_path.py: one generator process's share of a phase.

Each function here runs in a spawned process (``multiprocessing``), takes a plain dict and returns one:
it connects (and signs on) before ``start_at`` (wall clock, shared by the processes of the phase), then
drives the gateway for ``seconds``. The ISO 8583 work is ``gateway.banksim``'s: ``IsoClient`` for the
connections and ``LoadRun`` for the closed loop and for each payment of the open loop; HTTP uses
``HttpBankClient``. Approved payments and reversals are appended to ``spec["record"]`` in LoadRun's format
(``paid,NTPD,tax,bill,stan,field7`` / ``reversed,NTPD,,,stan,field7``) for the check afterwards.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict

import aiohttp

from gateway.banksim.client import IsoClient
from gateway.banksim.http_client import HttpBankClient
from gateway.banksim.load import LoadPlan, LoadRun
from gateway.runtime import run_fast

ERRORS = (ConnectionError, OSError, asyncio.TimeoutError)


def ready(_: int) -> int:
    """A no-op: the pool's processes have imported this module (and gateway) once it returns."""
    return os.getpid()


async def _wait_until(start_at: float) -> float:
    """Sleep until the wall-clock time ``start_at``; how late we are (seconds, >= 0) when it has passed."""
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    return max(0.0, -delay)


async def _signed_on(spec: dict, count: int) -> list[IsoClient]:
    """``count`` connections, signed on (0800 001), each numbering its STANs in a range of its own: two
    connections of one bank that meet on a STAN within the same second (field 7) are, rightly, answered 94."""
    block = 1_000_000 // (count * spec["processes"])
    clients = [IsoClient(spec["host"], spec["port"], bank=spec["bank"], timeout_s=30,
                         first_stan=(spec["index"] * count + k) * block + 1) for k in range(count)]
    for client in clients:
        await client.connect()
        answer = await client.request(client.network("001"))
        if answer.get("39") != "00":
            raise RuntimeError(f"sign-on refused: RC {answer.get('39')}")
    return clients


def _result(run: LoadRun, elapsed: float, late: float, **extra) -> dict:
    r = run.report
    return {"latencies_ms": dict(r.latencies_ms), "codes": {k: dict(v) for k, v in r.codes.items()},
            "errors": dict(r.errors), "elapsed_s": elapsed, "late_s": late, "unused": run.fresh, **extra}


def iso_closed(spec: dict) -> dict:
    return run_fast(_iso_closed(spec))


async def _iso_closed(spec: dict) -> dict:
    """Closed loop: ``LoadRun`` with ``concurrency`` workers on ``connections`` connections."""
    clients = await _signed_on(spec, spec["connections"])
    # A paying phase stops at its last bill (LoadRun would otherwise turn payments into inquiries).
    plan = LoadPlan(concurrency=spec["concurrency"], connections=spec["connections"], duration_s=spec["seconds"],
                    count=len(spec["bills"]) or None, mix=spec["mix"], record=spec["record"], seed=spec["seed"])
    run = LoadRun(clients, spec["bills"], plan)
    if spec.get("inquiry_bills"):
        run.all_bills = spec["inquiry_bills"]
    late = await _wait_until(spec["start_at"])
    try:
        report = await run.run()
    finally:
        for client in clients:
            await client.close()
    return _result(run, report.elapsed_s, late)


def iso_open(spec: dict) -> dict:
    return run_fast(_iso_open(spec))


async def _iso_open(spec: dict) -> dict:
    """Open loop: payments (inquiry, then payment of the total) started on a fixed schedule of ``rate`` per
    second whatever the answers do; each one's latency runs from its scheduled time, so queueing anywhere
    (gateway, database, this process) shows instead of slowing the arrivals (no coordinated omission)."""
    clients = await _signed_on(spec, spec["connections"])
    plan = LoadPlan(concurrency=1, connections=len(clients), duration_s=spec["seconds"], mix={"payment": 1},
                    record=spec["record"], seed=spec["seed"])
    run = LoadRun(clients, spec["bills"], plan)
    loop = asyncio.get_running_loop()
    interval = 1.0 / spec["rate"]
    from_schedule: list[float] = []
    lag: list[float] = []
    tasks: set[asyncio.Task] = set()

    async def one(k: int, due: float) -> None:
        lag.append((loop.time() - due) * 1000)
        if not run.fresh:
            run.report.errors["no bill left"] += 1
            return
        try:
            await run._pay(clients[k % len(clients)], *run.fresh.pop())
        except ERRORS as exc:
            run.report.errors[type(exc).__name__] += 1
            return
        from_schedule.append((loop.time() - due) * 1000)

    late = await _wait_until(spec["start_at"])
    t0 = loop.time() + spec["offset"] * interval  # the processes' schedules interleave
    k = 0
    while (due := t0 + k * interval) < t0 + spec["seconds"]:
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        task = asyncio.create_task(one(k, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    while tasks:
        await asyncio.gather(*list(tasks))
    elapsed = loop.time() - t0
    if run.record:
        run.record.close()
    for client in clients:
        await client.close()
    return _result(run, elapsed, late, scheduled=k, from_schedule_ms=from_schedule, lag_ms=lag)


def http_closed(spec: dict) -> dict:
    return run_fast(_http_closed(spec))


async def _http_closed(spec: dict) -> dict:
    """Closed loop over JSON/HTTP: each worker inquires a fresh PBB bill (GET) and pays its total (POST,
    signed, with an Idempotency-Key), ``concurrency`` workers on keep-alive connections."""
    client = HttpBankClient(spec["url"], spec["bank"], spec["secret"], timeout_s=30)
    fresh = list(spec["bills"])
    latencies: dict[str, list[float]] = defaultdict(list)
    codes: dict[str, Counter] = defaultdict(Counter)
    errors: Counter = Counter()
    record = open(spec["record"], "a", buffering=1)
    serial = iter(range(1, 10**9))
    tag = f"{os.getpid():x}{int(time.time()) % 100000:05d}"

    async def timed(op: str, call) -> dict:
        t0 = time.perf_counter()
        status, _, body = await call
        latencies[op].append((time.perf_counter() - t0) * 1000)
        rc = body.get("response_code", f"HTTP {status}") if isinstance(body, dict) else f"HTTP {status}"
        codes[op][rc] += 1
        return body if isinstance(body, dict) and rc == "00" else {}

    async def worker() -> None:
        while fresh and time.monotonic() < deadline:
            tax, bill = fresh.pop()
            nop, year = bill[:18], int(bill[18:])
            try:
                quote = await timed("inquiry", client.pbb_inquiry(nop, year))
                if not quote:
                    continue
                n = next(serial)
                paid = await timed("payment", client.pbb_payment(
                    f"wp-{tag}-{n}", nop=nop, tax_year=year, amount=quote["amount"]["total"], ntb=f"NTB{tag}{n}",
                    channel="atm"))
                if paid:
                    record.write(f"paid,{paid['ntpd']},{tax},{bill},,\n")
            except (*ERRORS, aiohttp.ClientError) as exc:  # the answer is unknown: the check says what happened
                errors[type(exc).__name__] += 1

    late = await _wait_until(spec["start_at"])
    t0 = time.monotonic()
    deadline = t0 + spec["seconds"]
    try:
        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    finally:
        await client.close()
        record.close()
    return {"latencies_ms": dict(latencies), "codes": {k: dict(v) for k, v in codes.items()},
            "errors": dict(errors), "elapsed_s": time.monotonic() - t0, "late_s": late, "unused": fresh}
