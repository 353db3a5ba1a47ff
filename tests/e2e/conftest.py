"""``gateway serve`` as a real subprocess on free ports, over a fresh test database."""
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

import asyncpg
import pytest

from gateway.banksim.client import IsoClient
from gateway.banksim.http_client import HttpBankClient

from .openapi_check import assert_conforms


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bank_toml(code: str, port: int | None = None, **options) -> str:
    lines = ["[[banks]]", f'code = "{code}"', f'name = "BANK {code}"', 'allow = ["127.0.0.1/32"]']
    if port:
        lines.append(f'iso_listen = "127.0.0.1:{port}"')
    for key, value in options.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


DEFAULT_BANKS = """
[[banks]]
code = "110"
name = "BANK PEMBANGUNAN DAERAH"
allow = ["127.0.0.1/32"]
api_secret = "secret-110"
"""


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
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                if self.http_port:
                    socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2).close()
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


@pytest.fixture
def make_gateway(db_url, tmp_path):
    started: list[Gateway] = []

    def make(banks: str = DEFAULT_BANKS, extra: str = "", start: bool = True, env=None, **ports) -> Gateway:
        port = free_port()
        http_port = free_port()
        config = tmp_path / f"gw{len(started)}.toml"
        text = f"""
[http]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"
[state]
dir = "{tmp_path / 'state'}"
[proof]
key_dir = "{tmp_path / 'keys'}"
[iso8583]
listen = "127.0.0.1:{port}"
{extra}
{banks}
"""
        config.write_text(text)
        gw = Gateway(db_url=db_url, config_path=config, port=port, log_path=tmp_path / f"gw{len(started)}.log",
                     bank_ports=ports, http_port=http_port)
        started.append(gw)
        if start:
            gw.start(env)
        return gw

    yield make
    for gw in started:
        gw.stop(signal.SIGKILL if gw.proc and gw.proc.poll() is None else signal.SIGTERM, timeout=5)


@pytest.fixture
async def gateway(make_gateway):
    return make_gateway()


class CheckedHttpClient(HttpBankClient):
    """A bank's HTTP client whose every answer is checked against the OpenAPI document."""

    async def call(self, method, path_qs, body=None, **kw):
        status, headers, parsed = await super().call(method, path_qs, body, **kw)
        assert_conforms(method, path_qs, status, headers, parsed)
        return status, headers, parsed


@pytest.fixture
async def http_client(gateway):
    """Make signed HTTP clients for the default gateway: ``http_client(bank="110", secret="secret-110")``."""
    clients: list[CheckedHttpClient] = []

    def make(bank: str = "110", secret: str = "secret-110", gw: Gateway | None = None) -> CheckedHttpClient:
        client = CheckedHttpClient((gw or gateway).http_url, bank, secret)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
