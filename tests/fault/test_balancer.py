"""Two `gateway serve` instances on one database behind a real HAProxy, configured by the file `deploy/` ships
(ISO 8583 in TCP mode, the API in HTTP mode, PROXY protocol v2 to both instances). The bank connects from an
address of its own (127.0.0.2; the balancer reaches the gateways from 127.0.0.1, which they trust as a
balancer), so its requests are approved only if the allow lists see its real address through the PROXY
header. Under ISO 8583 and HTTP load one instance is SIGKILLed; the bank reconnects through the balancer and
repeats what went unanswered. Then: every 00 is exactly one payment, no bill is paid twice, every repeat of
an approval is answered as stored, every unknown outcome is settled, money is conserved."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.banksim.client import IsoClient
from gateway.banksim.http_client import HttpBankClient
from helpers.gateway import bank_toml, free_port

from .harness import SECRET, SILENCE_S, Bank, Load, Report, check_database, check_repeats, seed_bills

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"
BANK_HOST = "127.0.0.2"  # the bank's own address; the balancer's is 127.0.0.1

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.access(HAPROXY, os.X_OK), reason="HAProxy is not installed (.ci/run installs it)")]


class Balancer:
    """HAProxy with deploy/'s configuration in front of two gateways; what the fault harness's Bank needs of a
    gateway (``client()``, ``http_url``), connecting from the bank's own address."""

    def __init__(self, tmp_path: Path, gateways: list) -> None:
        self.iso_port, self.http_port = free_port(), free_port()
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        env = {**os.environ, "GW_LB_ISO_BIND": f"127.0.0.1:{self.iso_port}",
               "GW_LB_HTTP_BIND": f"127.0.0.1:{self.http_port}"}
        for n, gw in enumerate(gateways, start=1):
            env[f"GW{n}_ISO"], env[f"GW{n}_HTTP"] = f"127.0.0.1:{gw.port}", f"127.0.0.1:{gw.http_port}"
        self.log = open(tmp_path / "haproxy.log", "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def client(self, **kw) -> IsoClient:
        return IsoClient("127.0.0.1", self.iso_port, bank="110", local_host=BANK_HOST, **kw)

    def http_client(self) -> HttpBankClient:
        return HttpBankClient(self.http_url, "110", SECRET, timeout_s=SILENCE_S, local_host=BANK_HOST)

    async def ready(self, timeout_s: float = 20) -> None:
        """Until both channels answer through the balancer (its checks have found the instances up)."""
        deadline = time.monotonic() + timeout_s
        async with self.http_client() as http:
            while True:
                try:
                    status, _, _ = await http.call("GET", "/readyz", sign=False)
                    async with self.client(timeout_s=2) as iso:
                        echo = await iso.request(iso.network("301"))
                    if status == 200 and echo.get("39") == "00":
                        return
                except (OSError, asyncio.TimeoutError, ConnectionError):
                    pass
                assert time.monotonic() < deadline, "the balancer did not reach the gateways"
                assert self.proc.poll() is None, "haproxy exited"
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def test_two_instances_behind_haproxy_lose_nothing_when_one_is_killed(make_gateway, db, tmp_path):
    report = Report("two instances behind HAProxy, one SIGKILLed")
    trust_balancer = {"GATEWAY_ISO8583_PROXY_PROTOCOL_FROM": "127.0.0.1/32",
                      "GATEWAY_HTTP_PROXY_PROTOCOL_FROM": "127.0.0.1/32"}
    banks = bank_toml("110", SECRET, allow=f"{BANK_HOST}/32")
    gateways = [make_gateway(banks=banks, env=trust_balancer) for _ in range(2)]
    balancer = Balancer(tmp_path, gateways)
    bills = await seed_bills(db, 2400)
    bank = None
    try:
        await balancer.ready()
        bank = Bank(balancer, iso_connections=6)
        bank.http = balancer.http_client()
        await bank.open()
        iso = Load(bank, bills[:1200], workers=6, channel="iso")
        http = Load(bank, bills[1200:], workers=4, channel="http")
        await iso.until_approved(120)
        victim = gateways[0]
        assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
        await asyncio.sleep(1.0)  # requests keep coming while the balancer finds the instance gone
        await asyncio.gather(iso.stop(), http.stop())
        report.figures.update(requests=len(bank.exchanges),
                              approvals=sum(ex.kind == "payment" and ex.rc == "00" for ex in bank.exchanges),
                              unanswered=sum(ex.rc is None for ex in bank.exchanges))
        # Both instances served: the bank's payments are spread over them (by ISO connection and HTTP request).
        served = await db.fetch("SELECT DISTINCT instance FROM gateway_instances")
        report.figures["instances_seen"] = len(served)
        await bank.reconnect()
        await check_repeats(report, bank)
        await check_database(report, db, bank)
        # The gateways saw the bank's real address (the allow list names only it) through the PROXY header.
        peers = {r["peer"].rsplit(":", 1)[0] for r in await db.fetch(
            "SELECT DISTINCT peer FROM message_log WHERE direction = 'in' AND event = 'message'"
            " AND peer IS NOT NULL")}
        report.check(peers == {BANK_HOST}, f"the message log's peers are not the bank's address: {peers}")
        # The balancer's health checks (a PROXY header saying LOCAL) are no security events.
        events = await db.fetch("SELECT peer, detail FROM message_log WHERE event = 'security'")
        report.check(not events, f"security events: {sorted({r['detail'] for r in events})}")
        report.check(gateways[1].proc.poll() is None, "the surviving instance exited")
    finally:
        if bank is not None:
            await bank.close()
        balancer.stop()
    report.assert_clean()
