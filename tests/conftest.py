"""Database fixtures: a real PostgreSQL for every integration test; ``make_gateway``, ``gateway serve`` processes
over it (the e2e and fault suites).

``GATEWAY_TEST_DATABASE_URL`` when set (a server the tests may create databases on), else the embedded
cluster in a private directory. Each test gets a fresh database cloned from a migrated template, which is
much faster than migrating per test.
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import tempfile
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from helpers.gateway import DEFAULT_BANKS, Gateway, free_port

_counter = itertools.count()


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_url():
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from gateway.store.embedded import EmbeddedPostgres

    # A private cluster per test session: concurrent test runs on one machine must not share a data
    # directory. /tmp, not pytest's tmp_path: the server may run as the postgres user, who cannot
    # enter root's 0700 pytest directories.
    directory = tempfile.mkdtemp(prefix="gateway-test-pg-")
    os.chmod(directory, 0o755)
    cluster = EmbeddedPostgres(directory)
    dsn = cluster.start()
    try:
        yield dsn
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg_template(pg_server_url):
    """A migrated database used as the template of each test's database."""
    from gateway.store.migrate import migrate

    name = f"gw_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(await _create_database(pg_server_url, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield name
    await _drop_database(pg_server_url, name)


async def _create_database(server_url: str, name: str, template: str | None = None) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await admin.close()
    return _with_dbname(server_url, name)


async def _drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db_url(pg_server_url, pg_template):
    """URL of a fresh, migrated database of this test's own; dropped afterwards."""
    name = f"gw_t_{os.getpid()}_{next(_counter)}"
    yield await _create_database(pg_server_url, name, template=pg_template)
    await _drop_database(pg_server_url, name)


@pytest.fixture
async def db(db_url):
    """One connection to this test's database."""
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()


@pytest.fixture
async def empty_db_url(pg_server_url):
    """URL of a fresh database with no schema at all."""
    name = f"gw_empty_{uuid.uuid4().hex[:8]}"
    yield await _create_database(pg_server_url, name)
    await _drop_database(pg_server_url, name)


@pytest.fixture
def make_gateway(db_url, tmp_path):
    """Start ``gateway serve`` processes on free ports over this test's database: ``make_gateway(banks=…,
    extra=…, start=True, env=…, **bank_ports)``; every one is stopped at the end of the test."""
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
