"""Load, probes and checks shared by the fault tests (spec/domain.md invariants 1, 2, 3, 7).

A load is a few bank connections (ISO 8583 or HTTP) whose workers each pay their own bills (an inquiry, then
the payment of the amount due): every RC is predictable, so any other RC is a finding. Every exchange is
recorded with the bank-side time it was sent and answered. The checks collect findings instead of stopping at
the first, so that one run says everything that is wrong (``Report.assert_clean``).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.banksim.client import IsoClient
from gateway.banksim.http_client import HttpBankClient
from gateway.settlement.invariants import check_conservation

YEAR = 2026
SECRET = "secret-110"
# The contract's bound (domain.md invariant 3: RC 91 within 2 s with the default settings), with a margin
# for a loaded 2-core test machine, measured on the bank's side.
BOUND_91_S = 2.5
# A request not answered by then is silence.
SILENCE_S = 10.0
RECOVERY_S = 20.0
LOG_POLL_S = 10.0

_series = itertools.count(1)


# -- bills -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    nop: str
    amount: int

    @property
    def bill_id(self) -> str:  # ISO field 61 for PBB: NOP + tax year
        return f"{self.nop}{YEAR}"


async def seed_bills(db, count: int) -> list[Bill]:
    """``count`` unpaid PBB bills of 2026, due in 2099 (no penalty: the amount due is the principal)."""
    series = next(_series)
    bills = [Bill(f"3275{series:02d}0007{i:07d}0"[:18], 100_000 + i * 7) for i in range(count)]
    assert all(len(b.nop) == 18 for b in bills)
    await db.executemany(
        "INSERT INTO bills (tax, bill_key, nop, tax_year, taxpayer_name, principal, due_date, status)"
        " VALUES ('PBB', $1 || $3::int::text, $1, $3::int, 'WAJIB PAJAK', $2, '2099-08-31', 'unpaid')",
        [(b.nop, b.amount, YEAR) for b in bills])
    return bills


# -- exchanges -------------------------------------------------------------------------------------


@dataclass
class Exchange:
    kind: str                  # inquiry | payment | repeat | probe | settle
    channel: str               # iso | http
    bill: Bill
    request: Any               # ISO fields, or (idempotency key, body, request id) for HTTP
    sent: float
    answered: float | None = None
    rc: str | None = None
    status: int | None = None  # HTTP status
    answer: Any = None
    error: str | None = None

    @property
    def latency(self) -> float | None:
        return None if self.answered is None else self.answered - self.sent

    @property
    def ntpd(self) -> str | None:
        if self.rc != "00" or self.answer is None:
            return None
        return self.answer.get("47") if self.channel == "iso" else self.answer.get("ntpd")

    def describe(self) -> str:
        what = self.request["11"] if self.channel == "iso" else self.request[0]
        lat = f"{self.latency:.2f} s" if self.latency is not None else "no answer"
        return f"{self.channel} {self.kind} {what} bill {self.bill.bill_id}: rc {self.rc} ({lat}) {self.error or ''}"


class Bank:
    """One bank: a few ISO connections and/or an HTTP client; every exchange recorded."""

    def __init__(self, gw, *, iso_connections: int = 0, http: bool = False):
        self.gw = gw
        # Disjoint STAN ranges: two connections counting from nearby random starts would reuse a STAN within
        # one second of field 7, which is the same message key (RC 94), not a fault of the gateway.
        first = random.randint(1, 400_000)
        self.iso: list[IsoClient] = [gw.client(timeout_s=SILENCE_S, first_stan=first + i * 50_000)
                                     for i in range(iso_connections)]
        self.http = HttpBankClient(gw.http_url, "110", SECRET, timeout_s=SILENCE_S) if http else None
        self.exchanges: list[Exchange] = []
        self._keys = itertools.count(1)
        self._rr = itertools.count()

    async def open(self) -> "Bank":
        for client in self.iso:
            await client.connect()
        return self

    async def close(self) -> None:
        for client in self.iso:
            await client.close()
        if self.http is not None:
            await self.http.close()

    async def reconnect(self) -> None:
        """New ISO connections (after the gateway was restarted)."""
        for client in self.iso:
            await client.close()
        self.iso = [self.gw.client(timeout_s=SILENCE_S) for _ in self.iso]
        for client in self.iso:
            await client.connect()

    # -- requests --

    async def iso_request(self, kind: str, bill: Bill, fields: dict[str, str], client: IsoClient | None = None
                          ) -> Exchange:
        client = client or self.iso[next(self._rr) % len(self.iso)]
        ex = Exchange(kind, "iso", bill, fields, time.monotonic())
        self.exchanges.append(ex)
        try:
            answer = await client.request(dict(fields))
            ex.answered = time.monotonic()
            ex.answer, ex.rc = answer, answer.get("39")
        except asyncio.TimeoutError:
            ex.error = f"silence: no answer within {SILENCE_S:.0f} s"
        except (ConnectionError, OSError) as exc:
            ex.error = f"connection lost: {exc!r}"
        return ex

    async def http_request(self, kind: str, bill: Bill, method: str, path: str, body: Any = None,
                           key: str | None = None) -> Exchange:
        request_id = f"fault-{next(self._keys)}-{os.getpid()}"
        ex = Exchange(kind, "http", bill, (key, body, request_id, method, path), time.monotonic())
        self.exchanges.append(ex)
        try:
            status, _headers, parsed = await self.http.call(method, path, body, idempotency_key=key,
                                                            extra_headers={"X-Request-Id": request_id})
            ex.answered = time.monotonic()
            ex.status, ex.answer = status, parsed
            ex.rc = parsed.get("response_code") if isinstance(parsed, dict) else None
        except asyncio.TimeoutError:
            ex.error = f"silence: no answer within {SILENCE_S:.0f} s"
        except Exception as exc:  # noqa: BLE001 - aiohttp's own errors: the connection was lost
            ex.error = f"connection lost: {exc!r}"
        return ex

    async def inquiry(self, bill: Bill, channel: str = "iso") -> Exchange:
        if channel == "iso":
            client = self.iso[next(self._rr) % len(self.iso)]
            return await self.iso_request("inquiry", bill, client.inquiry("pbb", bill.bill_id), client)
        return await self.http_request("inquiry", bill, "GET", f"/v1/pbb/bills/{bill.nop}/{YEAR}")

    async def pay(self, bill: Bill, channel: str = "iso", kind: str = "payment") -> Exchange:
        if channel == "iso":
            client = self.iso[next(self._rr) % len(self.iso)]
            return await self.iso_request(kind, bill, client.payment("pbb", bill.bill_id, bill.amount), client)
        key = f"pay-{next(self._keys)}-{bill.nop}"
        body = {"nop": bill.nop, "tax_year": YEAR, "amount": bill.amount, "ntb": key[-32:], "channel": "teller"}
        return await self.http_request(kind, bill, "POST", "/v1/pbb/payments", body, key)

    async def repeat(self, original: Exchange, kind: str = "repeat") -> Exchange:
        """The same request again: same message key, same content."""
        if original.channel == "iso":
            return await self.iso_request(kind, original.bill, original.request)
        key, body, _rid, method, path = original.request
        return await self.http_request(kind, original.bill, method, path, body, key)


class Load:
    """Workers paying bills until stopped: each takes its own bills, inquires, then pays the amount due."""

    def __init__(self, bank: Bank, bills: list[Bill], *, workers: int, channel: str = "iso",
                 pace_s: float = 0.02):
        self.bank, self.channel, self.pace_s = bank, channel, pace_s
        self._bills = iter(bills)
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(workers)]

    async def _work(self) -> None:
        while not self._stop.is_set():
            bill = next(self._bills, None)
            if bill is None:  # out of bills: this worker is done
                return
            await self.bank.inquiry(bill, self.channel)
            await self.bank.pay(bill, self.channel)
            await asyncio.sleep(self.pace_s)

    def approvals(self) -> int:
        return sum(1 for ex in self.bank.exchanges if ex.kind == "payment" and ex.rc == "00")

    async def until_approved(self, count: int, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while self.approvals() < count:
            assert time.monotonic() < deadline, f"the load did not get going: {self.approvals()} approvals"
            assert not any(t.done() for t in self._tasks), [t.exception() for t in self._tasks if t.done()]
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Report:
    name: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok

    def publish(self) -> None:
        line = json.dumps({"test": self.name, **self.figures, "problems": len(self.problems)}, default=str)
        print("\nFAULT FIGURES " + line)
        path = os.environ.get("GATEWAY_FAULT_FIGURES")
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")

    def assert_clean(self) -> None:
        self.publish()
        assert not self.problems, f"{self.name}: {len(self.problems)} findings:\n" + "\n".join(
            p if len(p) < 2000 else p[:2000] + " …" for p in self.problems)


def _sample(items, n: int = 5) -> str:
    items = list(items)
    return "; ".join(items[:n]) + (f" … ({len(items)} in all)" if len(items) > n else "")


def check_answers(report: Report, exchanges: list[Exchange], *, allowed: set[str], label: str = "") -> None:
    """Every request answered (never silence), with an allowed RC (never 96), every 91 within the bound;
    HTTP: 91 is a 503, 00 a 200. Records counts and times in the report's figures."""
    label = label or "requests"
    silent = [ex for ex in exchanges if ex.error]
    report.check(not silent, f"{label}: {len(silent)} requests got no answer: "
                 + _sample(ex.describe() for ex in silent))
    answered = [ex for ex in exchanges if not ex.error]
    bad = [ex for ex in answered if ex.rc not in allowed]
    report.check(not bad, f"{label}: RCs outside {sorted(allowed)}: " + _sample(ex.describe() for ex in bad))
    slow = [ex for ex in answered if ex.rc == "91" and ex.latency > BOUND_91_S]
    report.check(not slow, f"{label}: RC 91 later than {BOUND_91_S} s: " + _sample(ex.describe() for ex in slow))
    # Any answer later than the bound is a request that waited on the database beyond the timeouts without
    # being answered 91.
    late = [ex for ex in answered if ex.rc != "91" and ex.latency > BOUND_91_S]
    report.check(not late, f"{label}: answers later than {BOUND_91_S} s (should have been 91 by then): "
                 + _sample(ex.describe() for ex in late))
    wrong_status = [ex for ex in answered if ex.channel == "http"
                    and ((ex.rc == "91" and ex.status != 503) or (ex.rc == "00" and ex.status != 200))]
    report.check(not wrong_status, f"{label}: HTTP status not 503 for 91 / 200 for 00: "
                 + _sample(f"{ex.describe()} status {ex.status}" for ex in wrong_status))
    rcs = Counter(ex.rc for ex in answered)
    t91 = [ex.latency for ex in answered if ex.rc == "91"]
    report.figures.update({
        f"{label}": len(exchanges),
        f"{label}_rc": dict(sorted(rcs.items(), key=lambda kv: str(kv[0]))),
        f"{label}_unanswered": len(silent),
        f"{label}_max_91_s": round(max(t91), 3) if t91 else None,
        f"{label}_max_answer_s": round(max((ex.latency for ex in answered), default=0), 3),
    })


async def wait_recovery(report: Report, bank: Bank, probe_bills, healed_at: float, channel: str = "iso",
                        burst: int = 10) -> None:
    """After the fault heals: a payment every 0.2 s until one is approved (recovery), then bursts of
    ``burst`` concurrent payments until a whole burst is approved (full recovery: no dead connection left
    in the way), both within RECOVERY_S of the heal, never a restart."""
    probes = iter(probe_bills)
    first = full = None
    deadline = healed_at + RECOVERY_S
    while first is None and time.monotonic() < deadline:
        ex = await bank.pay(next(probes), channel, kind="probe")
        if ex.rc == "00":
            first = ex.answered - healed_at
        else:
            await asyncio.sleep(0.2)
    while first is not None and full is None and time.monotonic() < deadline:
        batch = await asyncio.gather(*(bank.pay(next(probes), channel, kind="probe") for _ in range(burst)))
        if all(ex.rc == "00" for ex in batch):
            full = max(ex.answered for ex in batch) - healed_at
        else:
            await asyncio.sleep(0.2)
    report.check(first is not None, f"no payment approved within {RECOVERY_S:.0f} s of the heal (no recovery)")
    report.check(full is not None, f"no burst of {burst} payments all approved within {RECOVERY_S:.0f} s of the heal")
    report.figures["recovery_s"] = round(first, 2) if first is not None else None
    report.figures["full_recovery_s"] = round(full, 2) if full is not None else None


async def check_repeats(report: Report, bank: Bank) -> None:
    """After the fault: every approved payment repeated is answered as stored (the same answer, nothing
    changed); every payment answered 91 or not at all, repeated, settles the truth: 00 (the original committed
    after all: the stored answer; or it had not: processed now). Never a second payment of a bill."""
    originals = [ex for ex in bank.exchanges if ex.kind in ("payment", "probe")]
    approved = [ex for ex in originals if ex.rc == "00"]
    unknown = [ex for ex in originals if ex.rc != "00"]
    mismatched, unsettled = [], []
    sem = asyncio.Semaphore(16)

    async def one(ex: Exchange, kind: str) -> tuple[Exchange, Exchange]:
        async with sem:
            return ex, await bank.repeat(ex, kind=kind)

    for ex, again in await asyncio.gather(*(one(ex, "repeat") for ex in approved)):
        if ex.channel == "iso":
            same = again.answer is not None and again.answer == ex.answer
        else:
            same = again.status == 200 and again.answer == ex.answer
        if not same:
            mismatched.append(f"{ex.describe()} → {again.describe()}")
    for ex, again in await asyncio.gather(*(one(ex, "settle") for ex in unknown)):
        if again.rc != "00":
            unsettled.append(f"{ex.describe()} → {again.describe()}")
    report.check(not mismatched, f"repeats of approved payments not answered as stored: {_sample(mismatched)}")
    report.check(not unsettled, f"repeats of unanswered/91 payments not approved: {_sample(unsettled)}")
    report.figures["repeats_of_approvals"] = len(approved)
    report.figures["repeats_of_unknown_outcomes"] = len(unknown)


async def check_database(report: Report, db, bank: Bank) -> None:
    """Invariants 1 and 3 from the database itself: every 00 the bank received is a payment, exactly once,
    of the right bill, with its ledger; every payment the bank never heard of as approved and that is
    active was settled by a repeat; at most one active payment per bill; paid ⇔ one active payment;
    money conserved."""
    approvals: dict[str, Exchange] = {}
    for ex in bank.exchanges:
        if ex.ntpd:
            approvals.setdefault(ex.ntpd, ex)
    rows = {r["ntpd"]: r for r in await db.fetch(
        "SELECT p.ntpd, b.bill_key, p.via, p.stan, p.transmitted, p.total,"
        " (SELECT count(*) FROM ledger_entries l WHERE l.payment_id = p.id AND l.reversal_id IS NULL) AS ledger,"
        " (SELECT coalesce(sum(amount), 0) FROM ledger_entries l WHERE l.payment_id = p.id) AS balance,"
        " ap.payment_id IS NOT NULL AS active"
        " FROM payments p JOIN bills b ON b.id = p.bill_id LEFT JOIN active_payments ap ON ap.payment_id = p.id")}
    missing = [n for n in approvals if n not in rows]
    report.check(not missing, f"{len(missing)} approvals (RC 00 received) not in the database: {missing[:5]}")
    wrong = []
    for ntpd, ex in approvals.items():
        row = rows.get(ntpd)
        if row is None:
            continue
        keys_ok = row["bill_key"] == ex.bill.bill_id and row["total"] == ex.bill.amount and row["active"]
        if ex.channel == "iso":
            keys_ok = keys_ok and (row["stan"], row["transmitted"]) == (ex.request["11"], ex.request["7"])
        if not keys_ok or row["ledger"] != 3 or row["balance"] != 0:
            wrong.append(f"{ntpd}: {dict(row)} vs {ex.describe()}")
    report.check(not wrong, f"approved payments with wrong rows or ledger: {_sample(wrong)}")
    # Payments the bank was never told 00 about (in any answer) are the double-post risk.
    orphans = [n for n in rows if n not in approvals]
    report.check(not orphans, f"{len(orphans)} payments in the database that the bank never got a 00 for "
                 f"(not settled by a repeat): {orphans[:5]}")
    doubles = await db.fetch(
        "SELECT b.bill_key, count(*) FROM payments p JOIN bills b ON b.id = p.bill_id"
        " LEFT JOIN reversals r ON r.payment_id = p.id WHERE r.id IS NULL GROUP BY b.bill_key HAVING count(*) > 1")
    report.check(not doubles, f"bills with more than one unreversed payment: {[tuple(r) for r in doubles][:5]}")
    inconsistent = await db.fetch(
        "SELECT b.bill_key, b.status, ap.payment_id FROM bills b LEFT JOIN active_payments ap ON ap.bill_id = b.id"
        " WHERE (b.status = 'paid') <> (ap.payment_id IS NOT NULL)")
    report.check(not inconsistent, f"bills whose status disagrees with their active payment: "
                 f"{[tuple(r) for r in inconsistent][:5]}")
    for day in [r["business_date"] for r in await db.fetch("SELECT DISTINCT business_date FROM payments")]:
        mismatches = await check_conservation(db, day)
        report.check(mismatches == [], f"money not conserved on {day}: {[str(m) for m in mismatches]}")
    report.figures["approvals"] = len(approvals)
    report.figures["payments_in_db"] = len(rows)


async def check_message_log(report: Report, db, bank: Bank, *, approvals_only: bool = False) -> None:
    """Invariant 7: every answer the bank received has its 'out' row (and its request an 'in' row) in the
    message log, polled for a bounded time (the log is written in batches). ISO rows are matched by STAN,
    field 7 and RC; HTTP rows by request id and RC. With ``approvals_only``, only approvals (by NTPD)."""
    answered = [ex for ex in bank.exchanges if ex.rc is not None and (ex.ntpd or not approvals_only)]
    want_out: Counter = Counter()
    want_in: Counter = Counter()
    for ex in answered:
        if approvals_only:
            want_out[("00", ex.ntpd)] += 1
        elif ex.channel == "iso":
            want_out[("iso", ex.request["11"], ex.request["7"], ex.rc)] += 1
            want_in[("iso", ex.request["11"], ex.request["7"])] += 1
        else:
            want_out[("http", ex.request[2], ex.rc)] += 1
            want_in[("http", ex.request[2])] += 1
    deadline = time.monotonic() + LOG_POLL_S
    while True:
        if approvals_only:
            have_out = Counter({("00", r["ntpd"].strip()): r["n"] for r in await db.fetch(
                "SELECT ntpd, count(*) AS n FROM message_log WHERE direction = 'out' AND response_code = '00'"
                " AND ntpd IS NOT NULL GROUP BY ntpd")})
            have_in: Counter = Counter()
        else:
            have_out, have_in = Counter(), Counter()
            for r in await db.fetch(
                    "SELECT channel, direction, stan, transmitted, connection_id, response_code, count(*) AS n"
                    " FROM message_log WHERE event = 'message' GROUP BY 1, 2, 3, 4, 5, 6"):
                if r["channel"] == "iso":
                    key = ("iso", r["stan"], r["transmitted"])
                else:
                    key = ("http", r["connection_id"])
                if r["direction"] == "out":
                    have_out[key + (r["response_code"],)] += r["n"]
                else:
                    have_in[key] += r["n"]
        lacking_out = want_out - have_out
        lacking_in = want_in - have_in
        if (not lacking_out and not lacking_in) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    what = "approvals" if approvals_only else "answers"
    report.check(not lacking_out, f"{sum(lacking_out.values())} of {sum(want_out.values())} {what} received by "
                 f"the bank have no 'out' row in message_log after {LOG_POLL_S:.0f} s: {list(lacking_out)[:5]}")
    report.check(not lacking_in, f"{sum(lacking_in.values())} answered requests have no 'in' row in message_log:"
                 f" {list(lacking_in)[:5]}")
    report.figures[f"message_log_{what}_missing"] = sum(lacking_out.values())
