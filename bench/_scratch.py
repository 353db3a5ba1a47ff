"""What every benchmark here needs around it: a scratch database's URL, psql, a free local port."""
from __future__ import annotations

import socket
import subprocess
from urllib.parse import urlsplit, urlunsplit


def with_db(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-qAtc", sql], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
