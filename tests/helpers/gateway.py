"""``gateway serve`` as a real subprocess on free ports: its configuration, its process, its readiness, and a
database proxy that a test can cut."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.banksim.client import IsoClient

DEFAULT_BANKS = """
[[banks]]
code = "110"
name = "BANK PEMBANGUNAN DAERAH"
allow = ["127.0.0.1/32"]
api_secret = "secret-110"
"""


# A gateway of one worker process: for the tests of a limit that is each worker's own (connections, per
# address, proof checks per minute: docs/decisions.md), measured against one process. Every other test runs
# the default, one worker per core.
ONE_WORKER = {"GATEWAY_SERVER_WORKERS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bank_toml(code: str = "110", secret: str | None = None, *, port: int | None = None,
              allow: str | tuple[str, ...] = ("127.0.0.1/32",), **options) -> str:
    """One ``[[banks]]`` entry: `secret` is its ``api_secret``, `port` its own ISO 8583 listener, `allow` one
    network or several; any other option is written as given (``taxes=["pbb"]``, ``enabled=False``)."""
    allow = (allow,) if isinstance(allow, str) else allow
    lines = ["[[banks]]", f'code = "{code}"', f'name = "BANK {code}"', f"allow = {json.dumps(list(allow))}"]
    if secret:
        lines.append(f'api_secret = "{secret}"')
    if port:
        lines.append(f'iso_listen = "127.0.0.1:{port}"')
    for key, value in options.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@dataclass
class Gateway:
    db_url: str
    config_path: Path
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    bank_ports: dict[str, int] = field(default_factory=dict)
    http_port: int = 0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, env: dict[str, str] | None = None) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_path)],
            env={**os.environ, **(env or {}), "GATEWAY_DATABASE_URL": self.db_url},
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        # Each port is probed until it accepts once, and no more: the ISO 8583 listener starts before the HTTP
        # one, and probes repeated while HTTP comes up would pile up as connections from 127.0.0.1 that the
        # gateway has not yet seen close (and count against its per-address limit).
        waiting = [self.port] + ([self.http_port] if self.http_port else [])
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2).close()
                waiting.pop(0)
                if not waiting:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not start listening:\n" + self.log())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def client(self, bank: str = "110", **kw) -> IsoClient:
        port = self.bank_ports.get(bank, self.port)
        return IsoClient("127.0.0.1", port, bank=bank, **kw)


async def wait_http(gw, timeout: float = 10) -> None:
    """Until the gateway's HTTP listener accepts connections."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("HTTP listener did not start:\n" + gw.log()) from None
            await asyncio.sleep(0.02)


async def start(make_gateway, **kw) -> Gateway:
    """``make_gateway(**kw)``, once both its ISO 8583 and its HTTP listeners accept connections."""
    gw = make_gateway(**kw)
    await wait_http(gw)
    return gw


async def two_banks(make_gateway, extra: str = "", **bank120) -> Gateway:
    """Bank 110 (secret-110) on the shared ISO listener, bank 120 (secret-120) on its own ISO listener."""
    port = free_port()
    banks = bank_toml("110", "secret-110") + bank_toml("120", "secret-120", port=port, **bank120)
    return await start(make_gateway, banks=banks, extra=extra, **{"120": port})


# -- a database proxy that can be cut ----------------------------------------------------------------


class PgProxy:
    """A TCP proxy to the test database that can be cut (every connection closed, none accepted)."""

    def __init__(self, db_url: str):
        parts = urlsplit(db_url)
        query = dict(parse_qsl(parts.query))
        host = query.pop("host", None) or parts.hostname or "localhost"
        port = query.pop("port", None) or parts.port or 5432
        self.unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self.target = (host, int(port))
        self.port = free_port()
        user = parts.username or ""
        if parts.password:
            user += ":" + parts.password
        netloc = (user + "@" if user else "") + f"127.0.0.1:{self.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _handle(self, reader, writer) -> None:
        # A connection accepted just before a cut, or whose upstream connect completes after one (the pool
        # opening one just then), must not survive the cut: it belongs to the server that accepted it.
        server = self.server
        if server is None or not server.is_serving():
            writer.transport.abort()
            return
        try:
            if self.unix_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self.server is not server or not server.is_serving():     # cut while connecting upstream
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.writers.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.discard(writer)
        self.writers.discard(up_writer)


async def gateway_behind_proxy(make_gateway, db_url: str):
    """A gateway whose database connections go through a PgProxy that a test can cut, with short
    database timeouts so that a cut is answered 91 quickly."""
    proxy = PgProxy(db_url)
    await proxy.start()
    gw = make_gateway(extra="[database]\nstatement_timeout_ms = 2000\nconnect_timeout_ms = 1000\npool_min = 1\n",
                      start=False)
    gw.db_url = proxy.url
    await asyncio.to_thread(gw.start)
    return gw, proxy
