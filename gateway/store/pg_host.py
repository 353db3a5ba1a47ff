"""The host side of the embedded PostgreSQL: where the server binaries are, which user runs them, the
state directory's lock, and the process checks (gateway/store/embedded.py runs the cluster with them).

Stdlib only; synchronous.
"""

from __future__ import annotations

import fcntl
import glob
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")

# Last-resort locations of server binaries: Debian/Ubuntu, then PGDG RPMs, then a source build.
_FALLBACK_GLOBS: tuple[str, ...] = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")

INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; "
    "Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql) "
    "or configure [database] url / GATEWAY_DATABASE_URL"
)

class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be found, started or stopped. The message is one line."""


def one_line(text: str) -> str:
    return " ".join(text.split())


def is_exe(path: pathlib.Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def has_server_binaries(d: pathlib.Path) -> bool:
    return all(is_exe(d / name) for name in _SERVER_BINARIES)


def version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"(\d+(?:\.\d+)*)", pathlib.Path(path).parent.name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def find_bindir() -> pathlib.Path:
    """Directory holding initdb, pg_ctl and postgres.

    Order: ``pg_config --bindir`` (if that directory has all three), then PATH (initdb and pg_ctl via
    ``shutil.which``, postgres beside them -- symlinks such as /usr/local/bin/initdb are followed, because
    initdb and pg_ctl themselves look for postgres beside their real path), then the highest-versioned
    ``/usr/lib/postgresql/*/bin`` (and ``/usr/pgsql-*/bin``, ``/usr/local/pgsql/bin``).
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            d = pathlib.Path(out.stdout.strip())
            if has_server_binaries(d):
                return d

    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        postgres = shutil.which("postgres")
        candidates = [pathlib.Path(initdb).resolve().parent, pathlib.Path(initdb).parent]
        if postgres:
            candidates.append(pathlib.Path(postgres).resolve().parent)
        for d in candidates:
            if has_server_binaries(d):
                return d

    for pattern in _FALLBACK_GLOBS:
        for found in sorted(glob.glob(pattern), key=version_key, reverse=True):
            if has_server_binaries(pathlib.Path(found)):
                return pathlib.Path(found)

    raise EmbeddedPostgresError(
        "embedded PostgreSQL: no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via pg_config, "
        f"PATH or /usr/lib/postgresql/*/bin; {INSTALL_HINT}"
    )


def default_test_dir() -> pathlib.Path:
    """A per-user directory for test clusters: ``/tmp/gateway-embedded-pg-<uid>``, mode 0755.

    Not under pytest's ``tmp_path``: /tmp/pytest-of-root is 0700 and the postgres user cannot traverse it.
    """
    d = pathlib.Path("/tmp") / f"gateway-embedded-pg-{os.getuid()}"
    try:
        d.mkdir(mode=0o755)
    except FileExistsError:
        pass
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise EmbeddedPostgresError(f"embedded PostgreSQL: {d} exists but is not a directory owned by uid {os.getuid()}")
    os.chmod(d, 0o755)
    return d


class RunAs:
    """Who runs the server binaries: the current user, or (when root) the postgres system user."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise EmbeddedPostgresError(
                    "embedded PostgreSQL: running as root but there is no 'postgres' system user to run the "
                    "server as (PostgreSQL refuses to run as root); create it (useradd --system postgres), "
                    "run the gateway as an unprivileged user, or configure [database] url"
                ) from None
        else:
            pw = pwd.getpwuid(os.geteuid())
        self.uid, self.gid, self.name, self.home = pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir

    def env(self) -> dict[str, str]:
        # No PG* variables from the caller's environment (PGHOST, PGPORT, PGDATA, ...): every connection
        # parameter is explicit. C messages so tool output is predictable.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if self.as_root:
            env.update(HOME=self.home or "/", USER=self.name, LOGNAME=self.name)
        return env

    def kwargs(self) -> dict:
        kw: dict = {"env": self.env(), "stdin": subprocess.DEVNULL, "capture_output": True, "text": True}
        if self.as_root:
            kw.update(user=self.uid, group=self.gid, extra_groups=[], cwd="/")
        return kw

    def own(self, path: pathlib.Path) -> None:
        if self.as_root:
            os.chown(path, self.uid, self.gid)

    def can_traverse(self, path: pathlib.Path) -> bool:
        st = os.stat(path)
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid == self.gid:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)


def proc_available() -> bool:
    return os.path.isdir("/proc/self")


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in (b"Z", b"X")


def conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


class FileLock:
    """Exclusive flock on a file; works between processes and between threads (one open file each)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> "FileLock":
        try:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except PermissionError:
                self.fd = os.open(self.path, os.O_RDONLY)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as e:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            raise EmbeddedPostgresError(f"embedded PostgreSQL: cannot lock {self.path}: {e}") from e
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
