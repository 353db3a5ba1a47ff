"""A TCP fault proxy between the gateway and PostgreSQL (asyncpg's tests/test_adversity.py, grown up).

The gateway connects to ``127.0.0.1:<port>``; every accepted connection (a *link*) is forwarded to the
database, over TCP or a Unix socket. The test switches the proxy's mode at run time:

``pass``
    Bytes flow both ways.
``blackhole``
    A partition that drops packets: every link, old and new, stays open and accepts bytes, but nothing is
    forwarded in either direction. New connections are accepted and then hang (no server greeting). A close
    by either end is not passed on either (the FIN would be dropped too).
``reset``
    Every link is closed with an RST on both sides, and new connections are accepted and reset at once.

``heal()`` returns to ``pass``. What happens to the links frozen by a black hole is the ``frozen`` argument:
``"resume"`` (the partition ends and TCP retransmits: the held bytes flow on, nothing lost), ``"dead"``
(half-open after heal: those links stay silent forever, only new links work) or ``"reset"`` (the peers'
retransmissions are answered with RST).

The proxy runs its own event loop in a thread, so that a test blocking its own loop (``subprocess``,
``time.sleep``, ``pg_ctl``) never stalls the database path of the gateway under test. Every control method
is thread-safe and returns once the change is in effect.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

PASS, BLACKHOLE, RESET = "pass", "blackhole", "reset"
READ_BYTES = 65536


def upstream_of(url: str) -> tuple[str, str | int]:
    """(host, port) of a TCP database URL, or ("unix", socket path) of a Unix socket one
    (``postgresql://user@/db?host=/dir&port=N`` → ``/dir/.s.PGSQL.N``)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [unquote(parts.hostname or "")])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    if not host or host.startswith("/"):
        return "unix", f"{host or '/var/run/postgresql'}/.s.PGSQL.{port}"
    return host, port


def url_via(url: str, port: int) -> str:
    """The database URL with its host replaced by the proxy at ``127.0.0.1:port`` (same user and database)."""
    parts = urlsplit(url)
    user = parts.username or ""
    password = f":{parts.password}" if parts.password else ""
    userinfo = f"{user}{password}@" if user else ""
    return f"postgresql://{userinfo}127.0.0.1:{port}{parts.path}"


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with an RST (SO_LINGER 0), not a FIN."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


@dataclass(eq=False)
class Link:
    client_w: asyncio.StreamWriter
    server_w: asyncio.StreamWriter | None = None
    # Set while bytes may flow; a frozen link's pumps hold what they read until it is set again (or forever).
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    dead: bool = False         # half-open: never flows again
    closed: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream: tuple[str, str | int], *, host: str = "127.0.0.1", port: int = 0):
        self.upstream = upstream
        self.host, self.port = host, port
        self.mode = PASS
        self.links: set[Link] = set()
        self.accepted = 0
        self.bytes_forwarded = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control (any thread) ------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or not self._loop.is_running():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def url_for(self, database_url: str) -> str:
        return url_via(database_url, self.port)

    def blackhole(self) -> None:
        self._call(self._set(BLACKHOLE))

    def reset(self) -> None:
        self._call(self._set(RESET))

    def heal(self, frozen: str = "resume") -> None:
        assert frozen in ("resume", "dead", "reset"), frozen
        self._call(self._heal(frozen))

    def open_links(self) -> int:
        return self._call(self._count())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the proxy's own loop ------------------------------------------------------------------------

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self._server.close()
        for link in list(self.links):
            self._close(link, rst=False)

    async def _count(self) -> int:
        return sum(1 for link in self.links if not link.closed)

    async def _set(self, mode: str) -> None:
        self.mode = mode
        for link in list(self.links):
            if mode == BLACKHOLE:
                link.flowing.clear()
            elif mode == RESET:
                self._close(link, rst=True)

    async def _heal(self, frozen: str) -> None:
        was = self.mode
        self.mode = PASS
        for link in list(self.links):
            if link.flowing.is_set() or link.dead:
                continue
            if was != BLACKHOLE or frozen == "resume":
                link.flowing.set()
            elif frozen == "dead":
                link.dead = True
            else:
                self._close(link, rst=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == RESET:
            _rst(client_w)
            return
        link = Link(client_w)
        self.links.add(link)
        if self.mode == PASS:
            link.flowing.set()
        # A link accepted in a black hole does not even reach the server until the partition ends.
        await link.flowing.wait()
        if link.closed:
            return
        try:
            if self.upstream[0] == "unix":
                server_r, server_w = await asyncio.open_unix_connection(str(self.upstream[1]))
            else:
                server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._close(link, rst=True)  # the database refuses: so does the proxy
            return
        link.server_w = server_w
        if link.closed:
            self._close(link, rst=True)
            return
        link.tasks = [asyncio.create_task(self._pump(link, client_r, server_w)),
                      asyncio.create_task(self._pump(link, server_r, client_w))]

    async def _pump(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(READ_BYTES)
                # Frozen: the bytes (or the EOF) are held, as TCP holds unacknowledged segments.
                await link.flowing.wait()
                if link.dead or link.closed:
                    return
                if not data:
                    break
                writer.write(data)
                self.bytes_forwarded += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            self._close(link, rst=True)
            return
        except asyncio.CancelledError:
            return
        self._close(link, rst=False)

    def _close(self, link: Link, *, rst: bool) -> None:
        if link.closed:
            return
        link.closed = True
        link.flowing.set()  # wake held pumps so that they end
        self.links.discard(link)
        for writer in (link.client_w, link.server_w):
            if writer is None:
                continue
            if rst:
                _rst(writer)
            else:
                writer.close()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
