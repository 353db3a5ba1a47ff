"""systemd's notify protocol (`Type=notify`, `WatchdogSec=`): READY=1 once the gateway serves, WATCHDOG=1 while
it is healthy, STOPPING=1 when it drains. A datagram to `$NOTIFY_SOCKET`, nothing else: without that variable
(not started by systemd) every call does nothing.

Healthy means what a bank needs: the event loop of every serving process runs, and the database answers. Each
serving process (each worker, or the only one) beats its heart (`Heartbeat`) by touching a file of its own in
`<state dir>/heartbeat` after a trivial query that answered within the beat; whoever holds the notify socket (the
supervisor, or the only process) sends WATCHDOG=1 only while every heart's last beat is recent. A database
away for longer than the watchdog lets systemd restart the gateway: set `WatchdogSec` above the longest
failover to ride out (deploy/systemd/gateway.service: 60 s).
"""
from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import asyncpg
import structlog

from gateway.store.db import answers, watchdog

log = structlog.get_logger("gateway.systemd")

NOTIFY_ENV = "NOTIFY_SOCKET"
# A heart beats this often, and a beat older than BEAT_S * MISSED is a stopped heart.
BEAT_S = 2.0
MISSED = 3


def notify(state: str) -> bool:
    """Send ``state`` (e.g. "READY=1") to systemd; False when not under systemd or the send failed."""
    address = os.environ.get(NOTIFY_ENV, "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("systemd notify failed", state=state, error=repr(exc))
        return False


def watchdog_interval_s() -> float | None:
    """Half of systemd's `WatchdogSec` for this process (WATCHDOG_USEC, WATCHDOG_PID), or None without one."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Heartbeat:
    """One serving process's heart: a file touched every BEAT_S while its loop runs and its database answers."""

    def __init__(self, directory: Path, name: str):
        self.path = directory / name
        directory.mkdir(parents=True, exist_ok=True)

    async def run(self, pool: asyncpg.Pool) -> None:
        while True:
            try:
                # Bounded as a request is: a wait for a connection, then a deadline that terminates it (a
                # cancelled query would wait for its cancel over a network that may be gone).
                async with pool.acquire(timeout=BEAT_S) as conn:
                    with watchdog(conn, BEAT_S):
                        await answers(conn)
                self.path.touch()
            except Exception as exc:  # noqa: BLE001 - no beat this time; the watchdog decides
                log.warning("heartbeat missed: database not answering", error=repr(exc))
            await asyncio.sleep(BEAT_S)


def hearts_alive(directory: Path, count: int) -> bool:
    """Whether ``count`` hearts in ``directory`` have all beaten within BEAT_S * MISSED."""
    now = time.time()
    beats = [p.stat().st_mtime for p in directory.iterdir()] if directory.is_dir() else []
    return len(beats) >= count and all(now - beat <= BEAT_S * MISSED for beat in beats)


def hearts_started(directory: Path, count: int) -> bool:
    """Whether ``count`` hearts have beaten at least once (every serving process is up)."""
    return directory.is_dir() and sum(1 for _ in directory.iterdir()) >= count
