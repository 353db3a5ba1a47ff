"""The ISO 8583 listeners: which bank a connection belongs to, the connection limits, TLS, shutdown, reload.

A bank with its own ``iso_listen`` owns every connection to that address (its ``allow`` list still
checked); on the shared listener the source address (or the TLS client certificate's fingerprint) must
belong to exactly one bank without a listener of its own. A connection that matches no bank is closed at
once and logged as a security event (spec/iso8583.md "Transport and framing").

Two limits are checked before that, across all listeners: ``max_connections`` in all and
``max_connections_per_address`` from one source address; a connection beyond either is closed at once and
logged as a security event. The per-address limit keeps one peer (or one misbehaving bank) from taking
every connection slot.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from gateway import metrics, proxy_protocol
from gateway.config import BankConfig, Config, Iso8583Config, address_in, parse_listen
from gateway.domain.log_row import LogRow
from gateway.iso8583.connection import Connection
from gateway.iso8583.messages import ConnectionState, Router
from gateway.service.ports import MessageSink

log = structlog.get_logger("gateway.iso8583")

SHARED = ""  # the key of the shared listener


class BankDirectory:
    """Who owns a connection, from the current bank list (replaced whole on SIGHUP)."""

    def __init__(self, banks: tuple[BankConfig, ...]):
        self.banks = {b.code: b for b in banks}

    def for_connection(self, listener: str, address: str, cert_fingerprint: str | None) -> BankConfig | None:
        """The one bank this connection can be: its address in the bank's ``allow`` list and, where the bank
        has a client certificate configured, that certificate presented (spec/iso8583.md)."""
        if listener != SHARED:
            bank = self.banks.get(listener)
            candidates = [bank] if bank is not None and bank.iso_listen else []
        else:
            candidates = [b for b in self.banks.values() if not b.iso_listen]
        matches = [b for b in candidates if b.allows_address(address) and _certificate_ok(b, cert_fingerprint)]
        return matches[0] if len(matches) == 1 else None


def _peer(peer: tuple) -> str:
    return f"{peer[0]}:{peer[1]}"


def _certificate_ok(bank: BankConfig, cert_fingerprint: str | None) -> bool:
    expected = bank.client_cert_fingerprint.replace(":", "").lower()
    return not expected or expected == cert_fingerprint


@dataclass(frozen=True)
class ConnectionSnapshot:
    """One open connection as the console's dashboard shows it (IsoServer.connection_snapshot)."""

    connection_id: str
    bank_code: str
    peer: str
    connected_at: datetime
    signed_on: bool
    last_message_at: datetime   # the last complete frame, keep-alive or answer sent
    in_flight: int


class IsoServer:
    def __init__(self, config: Config, router: Router, message_log: MessageSink | None, *, reuse_port: bool = False):
        self.config = config
        # Several worker processes bind the same listeners (gateway/supervisor.py); the limits below are
        # then each worker's own.
        self.reuse_port = reuse_port
        self.settings: Iso8583Config = config.iso8583
        self.router = router
        self.message_log = message_log
        self.directory = BankDirectory(config.banks)
        self.servers: dict[str, asyncio.AbstractServer] = {}
        # Each open connection with what decided its bank: (listener, source address, certificate fingerprint).
        # A reload decides again from the same facts.
        self.connections: dict[Connection, tuple[str, str, str | None]] = {}
        self.per_address: Counter[str] = Counter()
        self.tasks: set[asyncio.Task] = set()
        self.ssl = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | None:
        return self.tls_context(self.settings) if self.settings.tls_cert else None

    @staticmethod
    def tls_context(s: Iso8583Config) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(s.tls_cert, s.tls_key or None)
        if s.tls_client_ca:
            context.load_verify_locations(s.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def start(self) -> list[tuple[str, int]]:
        listeners = {SHARED: self.settings.listen}
        listeners.update({b.code: b.iso_listen for b in self.config.banks if b.iso_listen})
        bound = []
        for owner, address in listeners.items():
            host, port = parse_listen(address)
            # A TLS handshake that never completes is bounded like a first frame that never comes.
            handshake = {"ssl_handshake_timeout": self.settings.first_frame_timeout_s} if self.ssl else {}
            server = await asyncio.start_server(
                functools.partial(self._accept, owner=owner), host, port, ssl=self.ssl,
                limit=self.settings.max_message_bytes + 16, reuse_address=True, reuse_port=self.reuse_port or None,
                **handshake)
            self.servers[owner] = server
            sock = server.sockets[0].getsockname()
            bound.append((sock[0], sock[1]))
            log.info("iso8583 listening", owner=owner or "shared", address=f"{sock[0]}:{sock[1]}")
        return bound

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, owner: str) -> None:
        peer = writer.get_extra_info("peername")
        if not peer:  # gone before it was accepted (a balancer's or a monitor's connect-only check)
            writer.transport.abort()
            return
        if len(self.connections) >= self.settings.max_connections:
            self._security(owner, _peer(peer), "connection limit reached; refused")
            writer.transport.abort()
            return
        if self.settings.proxy_protocol_from and address_in(str(peer[0]), self.settings.proxy_protocol_from):
            # A balancer's connection: the bank's real address comes first, in the PROXY protocol header.
            try:
                proxied = await proxy_protocol.read(reader, self.settings.first_frame_timeout_s)
            except proxy_protocol.ProxyHeaderError as exc:
                self._security(owner, _peer(peer), f"balancer connection without a valid PROXY header ({exc}); closed")
                writer.transport.abort()
                return
            if proxied.source is None:  # the balancer's own health check
                writer.transport.abort()
                return
            peer = proxied.source
        address = str(peer[0])
        if self.per_address[address] >= self.settings.max_connections_per_address:
            self._security(owner, _peer(peer), "connection limit per address reached; refused")
            writer.transport.abort()
            return
        fingerprint = None
        cert = writer.get_extra_info("ssl_object") and writer.get_extra_info("ssl_object").getpeercert(True)
        if cert:
            fingerprint = hashlib.sha256(cert).hexdigest()
        bank = self.directory.for_connection(owner, peer[0], fingerprint)
        if bank is None:
            self._security(owner, _peer(peer), "connection matches no bank; closed")
            writer.transport.abort()
            return
        connection = Connection(reader, writer, ConnectionState(bank), self.router, self.message_log, self.settings,
                                peer=peer)
        self.connections[connection] = (owner, address, fingerprint)
        self.per_address[address] += 1
        metrics.CONNECTIONS.set(len(self.connections))
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            await connection.run()
        finally:
            self.connections.pop(connection, None)
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]
            metrics.CONNECTIONS.set(len(self.connections))
            self.tasks.discard(task)

    def _security(self, owner: str, peer: str, detail: str, bank_code: str | None = None) -> None:
        log.warning("security: " + detail, listener=owner or "shared", peer=peer)
        if self.message_log is not None:
            self.message_log.add(LogRow(logged_at=datetime.now(UTC), channel="iso", direction="in",
                                        event="security", peer=peer, detail=detail,
                                        bank_code=bank_code or owner or None))

    def connection_snapshot(self) -> list[ConnectionSnapshot]:
        """The open connections, from memory only (no I/O, no await: cheap to call from any task). Times are
        the connections' monotonic marks turned into wall-clock time at this moment."""
        wall, mono = datetime.now(UTC), time.monotonic()

        def at(mark: float) -> datetime:
            return wall - timedelta(seconds=max(0.0, mono - mark))

        return [ConnectionSnapshot(c.id, c.state.bank.code, c.peer, at(c.opened_at), c.state.signed_on,
                                   at(c.last_traffic), len(c.in_flight))
                for c in list(self.connections)]

    def reload(self, config: Config) -> None:
        """New bank list (SIGHUP). Each open connection's bank is decided again, as at its opening: one of
        a bank that is gone, or whose address or certificate no longer belongs to its bank (an ``allow``
        entry taken out, a certificate changed), is closed; the others see the new settings (enabled,
        sign-on, MAC key …) from their next message on."""
        self.config = config
        self.directory = BankDirectory(config.banks)
        for connection, (owner, address, fingerprint) in list(self.connections.items()):
            code = connection.state.bank.code
            bank = self.directory.for_connection(owner, address, fingerprint)
            if bank is not None and bank.code == code:
                connection.state.bank = bank
                continue
            if code in self.directory.banks:
                # The operator took this address (or certificate) away from the bank: most often a peer
                # no longer trusted, whose open connection must not outlive the decision.
                self._security(owner, connection.peer, f"connection no longer allowed for bank {code} after"
                               " reload; closed", bank_code=code)
            else:
                log.info("connection closed: its bank was removed", connection=connection.id, bank=code)
            connection.stop_reading()
            connection.writer.transport.abort()
        log.info("bank list reloaded", banks=len(config.banks))

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish and be answered, then close connections."""
        for server in self.servers.values():
            server.close()
        for connection in list(self.connections):
            connection.stop_reading()
        pending = [c.drain(timeout_s) for c in list(self.connections)]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=timeout_s + 1)
        for connection in list(self.connections):
            connection.writer.close()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=3)
        for server in self.servers.values():
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=2)
            except asyncio.TimeoutError:
                pass
