"""Embedded PostgreSQL (gateway.store.embedded): real initdb / pg_ctl against the binaries on this machine."""

from __future__ import annotations

import asyncio
import itertools
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import asyncpg
import pytest

from gateway.store import embedded, pg_host
from gateway.store.embedded import EmbeddedPostgres, EmbeddedPostgresError, default_test_dir, find_bindir

pytestmark = pytest.mark.integration

try:
    BINDIR = find_bindir()
except EmbeddedPostgresError as e:  # pragma: no cover - depends on the machine
    pytest.skip(str(e), allow_module_level=True)

AS_ROOT = os.geteuid() == 0
# Unix-socket only, so the port merely names the socket file; still keep clear of 5432.
_ports = itertools.count(55432 + (os.getpid() % 500) * 20)


@pytest.fixture
def state_dir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="emb-", dir=default_test_dir()))
    os.chmod(d, 0o755)
    try:
        yield d / "state"
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_pg(state_dir):
    """Factory for EmbeddedPostgres instances on the same state dir; the server is stopped at teardown."""
    port = next(_ports)
    made: list[EmbeddedPostgres] = []

    def make(**kw) -> EmbeddedPostgres:
        pg = EmbeddedPostgres(state_dir, port=port, **kw)
        made.append(pg)
        return pg

    yield make
    if made:
        made[0].stop()
        assert not made[0].is_running()


def query(dsn: str, sql: str):
    async def go():
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def execute(dsn: str, sql: str) -> None:
    async def go():
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def psql(pg: EmbeddedPostgres, sql: str) -> str:
    """Run psql from the bindir with the DSN (as the postgres user when root, like the server tools)."""
    kw = {}
    if AS_ROOT:
        pw = pwd.getpwnam("postgres")
        kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/")
    out = subprocess.run(
        [str(BINDIR / "psql"), "-X", "-At", "-d", pg.dsn(), "-c", sql],
        capture_output=True, text=True, timeout=30, check=True, **kw,
    )
    return out.stdout.strip()


def postmaster_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().splitlines()[0])


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


# ---------------------------------------------------------------------------------------------------------


def test_find_bindir_has_server_binaries():
    d = find_bindir()
    assert d.is_absolute()
    for name in ("initdb", "pg_ctl", "postgres"):
        assert os.access(d / name, os.X_OK), name


def test_find_bindir_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_host, "_FALLBACK_GLOBS", ())
    with pytest.raises(EmbeddedPostgresError) as ei:
        find_bindir()
    msg = str(ei.value)
    assert "\n" not in msg
    assert "apt-get install postgresql" in msg and "dnf install postgresql-server" in msg


def test_dsn_is_absolute_unix_socket(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pg = EmbeddedPostgres("var", port=55555)
    assert pg.dsn() == f"postgresql://gateway@/gateway?host={tmp_path}/var/run&port=55555"
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(pg.dsn()).query)
    assert q["host"] == [str(tmp_path / "var" / "run")]


def test_default_test_dir():
    d = default_test_dir()
    assert d == default_test_dir()
    assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o755


def test_start_connect_and_select(make_pg, state_dir):
    pg = make_pg()
    assert not pg.is_running()
    dsn = pg.start()
    assert pg.started_here is True
    assert pg.is_running()
    assert dsn == pg.dsn()
    assert f"host={state_dir}/run" in dsn
    assert query(dsn, "select 1") == 1
    assert psql(pg, "select 1") == "1"
    assert query(dsn, "select current_database()") == "gateway"
    assert query(dsn, "select current_user") == "gateway"
    assert query(dsn, "show listen_addresses") == ""
    assert query(dsn, "show fsync") == "on"
    assert query(dsn, "show max_connections") == "200"
    assert query(dsn, "select pg_encoding_to_char(encoding) from pg_database where datname = 'gateway'") == "UTF8"
    # data dir 0700, log file and socket where the spec says
    assert (pg.pgdata / "PG_VERSION").is_file()
    assert (pg.pgdata.stat().st_mode & 0o777) == 0o700
    assert (state_dir / "postgres.log").is_file()
    assert (state_dir / "run" / f".s.PGSQL.{pg.port}").is_socket()
    assert not (state_dir / "pgdata.initdb").exists()
    # settings appended to postgresql.conf exactly once
    assert (pg.pgdata / "postgresql.conf").read_text().count(embedded._CONF_MARKER) == 1


@pytest.mark.skipif(not AS_ROOT, reason="only meaningful when the tests run as root")
def test_as_root_server_runs_as_postgres_user(make_pg):
    pg = make_pg()
    pg.start()
    pw = pwd.getpwnam("postgres")
    assert pg.pgdata.stat().st_uid == pw.pw_uid
    assert pg.run_dir.stat().st_uid == pw.pw_uid
    assert pg.log_file.stat().st_uid == pw.pw_uid
    assert os.stat(f"/proc/{postmaster_pid(pg)}").st_uid == pw.pw_uid
    # the state dir itself stays with the caller, traversable by postgres
    assert pg.state_dir.stat().st_uid == 0
    assert (pg.state_dir.stat().st_mode & 0o777) == 0o755


def test_start_again_is_a_noop(make_pg):
    pg = make_pg()
    dsn = pg.start()
    pid = postmaster_pid(pg)
    again = make_pg()
    assert again.start() == dsn
    assert again.started_here is False
    assert pg.start() == dsn and pg.started_here is False
    assert postmaster_pid(pg) == pid
    assert query(dsn, "select 1") == 1


def test_stop_then_start_keeps_data(make_pg):
    pg = make_pg()
    dsn = pg.start()
    execute(dsn, "create table kept (id int primary key, note text); insert into kept values (1, 'paid')")
    pg.stop()
    assert not pg.is_running()
    pg.stop()  # stopping a stopped server is fine
    assert pg.start() == dsn and pg.started_here is True
    assert query(dsn, "select note from kept where id = 1") == "paid"


def test_stop_without_cluster_is_fine(state_dir):
    pg = EmbeddedPostgres(state_dir, port=next(_ports))
    pg.stop()  # state dir does not even exist
    state_dir.mkdir()
    pg.stop()
    assert not pg.is_running()


def test_custom_database_and_user(make_pg):
    pg = make_pg(dbname="gw test's db", user="gw_owner")
    dsn = pg.start()
    assert query(dsn, "select current_database()") == "gw test's db"
    assert query(dsn, "select current_user") == "gw_owner"


def test_concurrent_start_threads_one_cluster(make_pg):
    pgs = [make_pg() for _ in range(4)]
    dsns: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(pgs))

    def run(pg):
        try:
            barrier.wait()
            dsns.append(pg.start())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(pg,)) for pg in pgs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(set(dsns)) == 1 and len(dsns) == len(pgs)
    assert sum(pg.started_here for pg in pgs) == 1
    for dsn in dsns:
        assert query(dsn, "select 1") == 1
    log = pgs[0].log_file.read_text()
    assert log.count("starting PostgreSQL") == 1


_CHILD = """
import sys
from gateway.store.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(sys.argv[1], port=int(sys.argv[2]))
dsn = pg.start()
print(pg.started_here, dsn)
"""


def test_concurrent_start_processes_one_cluster(make_pg, state_dir):
    pg = make_pg()  # for teardown
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(state_dir), str(pg.port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        started, dsn = out.split()
        results.append((started == "True", dsn))
    assert sum(s for s, _ in results) == 1
    assert {d for _, d in results} == {pg.dsn()}
    assert query(pg.dsn(), "select 1") == 1
    assert pg.log_file.read_text().count("starting PostgreSQL") == 1


def test_sigkill_postmaster_then_start_recovers(make_pg):
    pg = make_pg()
    dsn = pg.start()
    execute(dsn, "create table survived (v text); insert into survived values ('yes')")
    pid = postmaster_pid(pg)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    assert not pg.is_running()
    assert (pg.pgdata / "postmaster.pid").exists()  # stale
    assert pg.start() == dsn
    assert pg.started_here is True
    assert postmaster_pid(pg) != pid
    assert query(dsn, "select v from survived") == "yes"


def test_stop_with_stale_pid_file_is_fine(make_pg):
    pg = make_pg()
    pg.start()
    pid = postmaster_pid(pg)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    pg.stop()
    assert not pg.is_running()


def test_start_failure_is_one_line_naming_step_and_cause(make_pg):
    pg = make_pg()
    pg.start()
    pg.stop()
    conf = pg.pgdata / "postgresql.conf"
    original = conf.read_bytes()
    with open(conf, "a") as f:
        f.write("shared_buffers = 'plenty'\n")
    try:
        with pytest.raises(EmbeddedPostgresError) as ei:
            pg.start()
        msg = str(ei.value)
        assert "\n" not in msg
        assert "pg_ctl start" in msg
        assert "shared_buffers" in msg or "configuration file" in msg, msg
        assert not pg.is_running()
    finally:
        conf.write_bytes(original)
    assert pg.start() and pg.started_here is True


def test_not_a_data_directory(make_pg, state_dir):
    pg = make_pg()
    (state_dir / "pgdata").mkdir(parents=True)
    (state_dir / "pgdata" / "junk").write_text("x")
    with pytest.raises(EmbeddedPostgresError, match="not a PostgreSQL data directory"):
        pg.start()


def test_root_without_postgres_user(monkeypatch, state_dir):
    monkeypatch.setattr(pg_host.os, "geteuid", lambda: 0)

    def nouser(name):
        raise KeyError(name)

    monkeypatch.setattr(pg_host.pwd, "getpwnam", nouser)
    with pytest.raises(EmbeddedPostgresError, match="no 'postgres' system user"):
        EmbeddedPostgres(state_dir, port=next(_ports)).start()


@pytest.mark.skipif(not AS_ROOT, reason="needs root")
def test_as_root_untraversable_parent_is_reported(state_dir):
    parent = state_dir.parent / "private"
    parent.mkdir(mode=0o700)
    os.chmod(parent, 0o700)
    pg = EmbeddedPostgres(parent / "state", port=next(_ports))
    with pytest.raises(EmbeddedPostgresError) as ei:
        pg.start()
    assert "cannot enter" in str(ei.value) and str(parent) in str(ei.value)


@pytest.mark.skipif(not AS_ROOT, reason="needs root")
def test_as_root_new_state_dirs_are_0755(state_dir):
    old = os.umask(0o077)
    try:
        pg = EmbeddedPostgres(state_dir / "a" / "b", port=next(_ports))
        try:
            pg.start()
            assert query(pg.dsn(), "select 1") == 1
        finally:
            pg.stop()
    finally:
        os.umask(old)
    for d in (state_dir, state_dir / "a", state_dir / "a" / "b"):
        assert (d.stat().st_mode & 0o777) == 0o755, d
