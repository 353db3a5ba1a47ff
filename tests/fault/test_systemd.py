"""`gateway serve` under systemd's notify protocol (Type=notify, WatchdogSec): a datagram socket stands in for
systemd's. READY=1 comes once every worker serves; WATCHDOG=1 keeps coming while the event loops run and the
database answers, stops while the database is away (systemd would restart the gateway after WatchdogSec) and
resumes when it is back; STOPPING=1 comes at SIGTERM. With workers, only the supervisor speaks."""
from __future__ import annotations

import asyncio
import signal
import socket
import time

import pytest

from helpers.gateway import ONE_WORKER

pytestmark = pytest.mark.integration


class FakeSystemd:
    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.received: list[tuple[float, str]] = []

    def env(self, watchdog_s: float) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(int(watchdog_s * 1_000_000))}

    def drain(self) -> list[str]:
        while True:
            try:
                self.received.append((time.monotonic(), self.sock.recv(4096).decode()))
            except BlockingIOError:
                return [m for _, m in self.received]

    async def until(self, message: str, timeout_s: float = 30, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.drain()
            for at, m in self.received:
                if m == message and at >= after:
                    return at
            await asyncio.sleep(0.05)
        raise AssertionError(f"{message} not received; got {[m for _, m in self.received]}")


@pytest.mark.parametrize("workers", ["default", "one"])
async def test_ready_watchdog_while_healthy_and_stopping(make_gateway, proxy, db_url, tmp_path, workers):
    systemd = FakeSystemd(tmp_path)
    gw = make_gateway(start=False)
    gw.db_url = proxy.url_for(db_url)
    env = {**systemd.env(watchdog_s=1.0), **(ONE_WORKER if workers == "one" else {})}
    await asyncio.to_thread(gw.start, env)
    ready = await systemd.until("READY=1")
    fed = await systemd.until("WATCHDOG=1", after=ready)
    await systemd.until("WATCHDOG=1", after=fed + 0.1)  # and again

    proxy.blackhole()  # the database away: no heart beats, the watchdog goes hungry
    await asyncio.sleep(7)  # beats older than 6 s are stale
    systemd.drain()
    cut = time.monotonic()
    await asyncio.sleep(3)
    systemd.drain()
    assert not [m for at, m in systemd.received if at >= cut and m == "WATCHDOG=1"], systemd.received

    proxy.heal()
    await systemd.until("WATCHDOG=1", after=time.monotonic(), timeout_s=30)

    assert gw.stop(signal.SIGTERM) == 0
    await systemd.until("STOPPING=1")
    messages = systemd.drain()
    assert messages.count("READY=1") == 1 and messages[0] == "READY=1", messages
    assert set(messages) == {"READY=1", "WATCHDOG=1", "STOPPING=1"}, messages
