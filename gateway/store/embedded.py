"""Embedded PostgreSQL: a private cluster under the state directory.

Used when no ``[database] url`` / ``GATEWAY_DATABASE_URL`` is configured (operations.md, "The database").
The cluster lives in ``<state_dir>/pgdata``, listens only on a Unix socket in ``<state_dir>/run`` and logs to
``<state_dir>/postgres.log``.  The server binaries are the ones installed on the machine (see
:func:`find_bindir`).

PostgreSQL refuses to run as root; when the gateway runs as root every server binary (initdb, pg_ctl,
psql, createdb) is run as the ``postgres`` system user, and the directories the server writes to are owned
by that user.  Concurrent ``start()``/``stop()`` calls (threads or processes) are serialised with an
exclusive ``flock`` on ``<state_dir>/embedded.lock``.

Stdlib only; synchronous (call it from a thread if an event loop must not block).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import time
import urllib.parse

from gateway.store.pg_host import (
    INSTALL_HINT,
    EmbeddedPostgresError,
    FileLock,
    RunAs,
    conf_quote,
    default_test_dir,
    find_bindir,
    is_exe,
    is_zombie,
    one_line,
    proc_available,
)

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "default_test_dir", "find_bindir"]

# Marks the settings block appended to postgresql.conf after initdb.
_CONF_MARKER = "# --- gateway embedded PostgreSQL settings ---"

# Unix socket paths are limited to sizeof(sun_path) - 1 bytes.
_MAX_SOCKET_PATH = 107

_SSL_REQUEST = struct.pack("!II", 8, 80877103)

# Timeouts (seconds).
_PG_CTL_WAIT = 60
_INITDB_TIMEOUT = 600
_CLIENT_TIMEOUT = 120
_STALE_WAIT = 15.0



class EmbeddedPostgres:
    """A private PostgreSQL cluster under ``state_dir``, reachable only through a Unix socket."""

    def __init__(
        self, state_dir: pathlib.Path | str, *, dbname: str = "gateway", user: str = "gateway", port: int = 5432
    ) -> None:
        self.state_dir = pathlib.Path(os.path.abspath(os.fspath(state_dir)))
        self.pgdata = self.state_dir / "pgdata"
        self.run_dir = self.state_dir / "run"
        self.log_file = self.state_dir / "postgres.log"
        self.lock_file = self.state_dir / "embedded.lock"
        self.dbname = dbname
        self.user = user
        self.port = int(port)
        self.started_here = False
        self._bindir: pathlib.Path | None = None

    # ------------------------------------------------------------------ public

    @property
    def socket_path(self) -> pathlib.Path:
        return self.run_dir / f".s.PGSQL.{self.port}"

    def dsn(self) -> str:
        host = urllib.parse.quote(str(self.run_dir), safe="/")
        user = urllib.parse.quote(self.user, safe="")
        db = urllib.parse.quote(self.dbname, safe="")
        return f"postgresql://{user}@/{db}?host={host}&port={self.port}"

    def is_running(self) -> bool:
        """True when a PostgreSQL server answers on the socket (it replies to an SSLRequest)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5.0)
        try:
            s.connect(str(self.socket_path))
            s.sendall(_SSL_REQUEST)
            return s.recv(1) in (b"N", b"S")
        except OSError:
            return False
        finally:
            s.close()

    def start(self) -> str:
        """Initialise the cluster if needed, start it if it is not running, create the database if missing.

        Returns :meth:`dsn`. ``self.started_here`` is True when this call started the server.
        """
        self.started_here = False
        runas = RunAs()
        self._prepare_state_dir(runas)
        with self._locked():
            bindir = self.bindir
            self._prepare(runas)
            if not self.pgdata.exists():
                self._initdb(runas, bindir)
            elif not (self.pgdata / "PG_VERSION").is_file():
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL: {self.pgdata} exists but is not a PostgreSQL data directory; "
                    "move it away and start again"
                )
            self._check_owner(runas)
            if not self._wait_out_stale():
                self._pg_ctl_start(runas, bindir)
                self.started_here = True
            if not self.is_running():
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL: server started but does not answer on {self.socket_path} "
                    f"(see {self.log_file})"
                )
            self._ensure_database(runas, bindir)
        return self.dsn()

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``) if the server is running; no error if it is not."""
        if not self.state_dir.is_dir():
            return
        with self._locked():
            if not (self.pgdata / "postmaster.pid").exists():
                return
            if proc_available() and not self.is_running() and not self._cluster_pids():
                return  # stale postmaster.pid: nothing is running (start() copes with the file)
            runas = RunAs()
            cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(_PG_CTL_WAIT), "stop"]
            res = self._run("pg_ctl stop", cmd, runas, timeout=_PG_CTL_WAIT + 30, check=False)
            if res.returncode == 0:
                return
            # A stale postmaster.pid (server crashed or machine restarted) is not an error.
            if not self.is_running() and not self._cluster_pids():
                return
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: pg_ctl stop failed: {self._last_line(res.stderr or res.stdout)}"
            )

    # ------------------------------------------------------------------ internals

    @property
    def bindir(self) -> pathlib.Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def _tool(self, name: str) -> str:
        p = self.bindir / name
        if is_exe(p):
            return str(p)
        found = shutil.which(name)
        if not found:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: '{name}' not found in {self.bindir} or on PATH; {INSTALL_HINT}")
        return found

    def _locked(self):
        return FileLock(self.lock_file)

    def _prepare_state_dir(self, runas: RunAs) -> None:
        """Create the state directory (new directories 0755) and make sure the server user can reach it."""
        try:
            missing = []
            d = self.state_dir
            while not d.exists():
                missing.append(d)
                d = d.parent
            for d in reversed(missing):
                try:
                    d.mkdir()
                except FileExistsError:
                    continue
                os.chmod(d, 0o755)
            if not self.state_dir.is_dir():
                raise EmbeddedPostgresError(f"embedded PostgreSQL: state directory {self.state_dir} is not a directory")
            if runas.as_root:
                for d in [*reversed(self.state_dir.parents), self.state_dir]:
                    if not runas.can_traverse(d):
                        mode = stat.S_IMODE(os.stat(d).st_mode)
                        raise EmbeddedPostgresError(
                            f"embedded PostgreSQL: the '{runas.name}' user cannot enter {d} (mode {mode:04o}); "
                            f"use a state directory it can reach or chmod o+x {d}"
                        )
            sock = str(self.socket_path)
            if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL: socket path {sock} is longer than {_MAX_SOCKET_PATH} bytes; "
                    "use a shorter state directory path"
                )
        except OSError as e:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: preparing {self.state_dir} failed: {e}") from e

    def _prepare(self, runas: RunAs) -> None:
        """Socket directory and log file, owned by the server user."""
        try:
            self.run_dir.mkdir(mode=0o755, exist_ok=True)
            runas.own(self.run_dir)
            os.chmod(self.run_dir, 0o755)
            fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.close(fd)
            runas.own(self.log_file)
        except OSError as e:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: preparing {self.state_dir} failed: {e}") from e

    def _check_owner(self, runas: RunAs) -> None:
        st = os.stat(self.pgdata)
        if st.st_uid != runas.uid:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: {self.pgdata} is owned by uid {st.st_uid}, but the server runs as "
                f"'{runas.name}' (uid {runas.uid}); chown -R {runas.name} {self.pgdata}"
            )

    def _initdb(self, runas: RunAs, bindir: pathlib.Path) -> None:
        """initdb into pgdata.initdb, append our settings, then rename to pgdata.

        The rename makes initialisation all-or-nothing: an interrupted initdb never leaves a half-made pgdata.
        """
        tmp = self.state_dir / "pgdata.initdb"
        try:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(mode=0o700)
            runas.own(tmp)
            os.chmod(tmp, 0o700)
        except OSError as e:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: preparing {tmp} failed: {e}") from e
        cmd = [
            self._tool("initdb"),
            "-D", str(tmp),
            f"--username={self.user}",
            "-A", "trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        self._run("initdb", cmd, runas, timeout=_INITDB_TIMEOUT)
        settings = [
            "",
            _CONF_MARKER,
            "# Unix socket only; port and socket directory are also passed by the gateway on every start.",
            "listen_addresses = ''",
            f"unix_socket_directories = '{conf_quote(str(self.run_dir))}'",
            f"port = {self.port}",
            "max_connections = 200",
            "shared_buffers = 128MB",
            "# This is a payment system: never trade durability for speed.",
            "fsync = on",
            "synchronous_commit = on",
            "full_page_writes = on",
            "",
        ]
        try:
            with open(tmp / "postgresql.conf", "a", encoding="utf-8") as f:
                f.write("\n".join(settings))
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.pgdata)
            dfd = os.open(self.state_dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: configuring {self.pgdata} failed: {e}") from e

    def _cluster_pids(self) -> list[int]:
        """Processes of this cluster: every postgres process has the data directory as its cwd."""
        target = os.path.realpath(self.pgdata)
        pids = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return []
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/cwd") == target:
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def _remove_zombie_pidfile(self) -> None:
        """Remove postmaster.pid and the socket lock file when the postmaster they name is a zombie.

        PostgreSQL itself treats a lock file whose process no longer exists as stale, but a killed
        postmaster that nobody has reaped yet (in a container whose init does not reap orphans, or where the
        gateway is PID 1) still "exists", and the new postmaster refuses to start ("lock file already
        exists"). A zombie is as dead as a missing process, and no process is using the data directory.
        """
        for lockfile in (self.pgdata / "postmaster.pid", self.run_dir / f".s.PGSQL.{self.port}.lock"):
            try:
                pid = int(lockfile.read_text().split("\n", 1)[0].strip())
            except (OSError, ValueError):
                continue
            if pid > 0 and is_zombie(pid):
                try:
                    lockfile.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise EmbeddedPostgresError(f"embedded PostgreSQL: removing stale {lockfile} failed: {e}") from e

    def _wait_out_stale(self) -> bool:
        """Return True if the server is already running. Otherwise wait until processes left over from a
        crashed server (children of a killed postmaster) have exited, so that pg_ctl start can succeed."""
        deadline = time.monotonic() + _STALE_WAIT
        while True:
            if self.is_running():
                return True
            pids = self._cluster_pids()
            if not pids:
                self._remove_zombie_pidfile()
                return False
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL: server processes {pids[:5]} are using {self.pgdata} but nothing answers "
                    f"on {self.socket_path} (started with another port?); stop them "
                    f"(pg_ctl -D {self.pgdata} stop -m fast) and start again"
                )
            time.sleep(0.2)

    def _pg_ctl_start(self, runas: RunAs, bindir: pathlib.Path) -> None:
        try:
            log_offset = self.log_file.stat().st_size
        except OSError:
            log_offset = 0
        opts = f"-p {self.port} -k {shlex.quote(str(self.run_dir))}"
        cmd = [
            str(bindir / "pg_ctl"),
            "-D", str(self.pgdata),
            "-l", str(self.log_file),
            "-o", opts,
            "-w", "-t", str(_PG_CTL_WAIT),
            "start",
        ]
        res = self._run("pg_ctl start", cmd, runas, timeout=_PG_CTL_WAIT + 30, check=False, new_session=True)
        if res.returncode != 0:
            detail = self._log_tail(log_offset) or self._last_line(res.stderr or res.stdout)
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: pg_ctl start failed: {detail} (see {self.log_file})"
            )

    def _ensure_database(self, runas: RunAs, bindir: pathlib.Path) -> None:
        conn = ["-h", str(self.run_dir), "-p", str(self.port), "-U", self.user]
        literal = self.dbname.replace("'", "''")
        res = self._run(
            "psql",
            [self._tool("psql"), "-X", "-A", "-t", "-q", *conn, "-d", "postgres",
             "-c", f"select 1 from pg_database where datname = '{literal}'"],
            runas, timeout=_CLIENT_TIMEOUT,
        )
        if res.stdout.strip() == "1":
            return
        res = self._run("createdb", [self._tool("createdb"), *conn, self.dbname], runas, timeout=_CLIENT_TIMEOUT, check=False)
        if res.returncode != 0 and "already exists" not in res.stderr:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: createdb {self.dbname} failed: {self._last_line(res.stderr or res.stdout)}"
            )

    def _run(self, step: str, cmd: list[str], runas: RunAs, *, timeout: float, check: bool = True,
             new_session: bool = False) -> subprocess.CompletedProcess:
        try:
            res = subprocess.run(cmd, timeout=timeout, start_new_session=new_session, **runas.kwargs())
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: {step} did not finish within {int(timeout)} s (see {self.log_file})"
            ) from None
        except OSError as e:
            raise EmbeddedPostgresError(f"embedded PostgreSQL: {step} could not be run: {e}") from e
        if check and res.returncode != 0:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: {step} failed: {self._last_line(res.stderr or res.stdout)}"
            )
        return res

    @staticmethod
    def _last_line(text: str | None) -> str:
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        return one_line(lines[-1]) if lines else "no output"

    def _log_tail(self, offset: int) -> str:
        """The most telling line the server logged since ``offset``: the last FATAL/PANIC/ERROR, else the last."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        for ln in reversed(lines):
            if re.search(r"\b(FATAL|PANIC|ERROR):", ln):
                return one_line(ln)
        return one_line(lines[-1]) if lines else ""
