"""One bank connection: framing, many requests in flight, back-pressure, timeouts, echo, MAC, logging.

Requests are handled concurrently and answered in any order (the bank matches by field 11 + 7). At most
``max_in_flight`` are in progress; beyond that the connection stops reading, so a bank that floods the
gateway slows itself down and nobody else.

Timeouts are kept by one watchdog task (``_watchdog``), never by cancelling a read: a connection with no
complete frame ``first_frame_timeout_s`` after opening, or without traffic for ``idle_timeout_s``
(frames, keep-alives and answers sent all count), is closed by aborting its transport.
"""
from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from datetime import UTC, datetime
from typing import cast

import structlog

from gateway import metrics
from gateway.config import Iso8583Config
from gateway.domain.codes import RC
from gateway.domain.log_row import LogRow
from gateway.iso8583 import framing, mac
from gateway.iso8583.messages import ConnectionState, Outcome, Router
from gateway.iso8583.profiles import mask_pan
from gateway.iso8583.spec import IsoFormatError, decode, encode, is_request
from gateway.service.ports import MessageSink

log = structlog.get_logger("gateway.iso8583")

# When the message being handled arrived (time.monotonic()), for the timing of a row written elsewhere.
_started: contextvars.ContextVar[float] = contextvars.ContextVar("iso_message_started")

_connection_ids = itertools.count(1)
_stan = itertools.count(1)

# The message log's allow-list (spec/iso8583.md "Transport and framing"): the MTI and the fields of the
# spec's field table. Their values are stored (field 2 masked to first 6 + last 4; the NIK inside field 62
# is masked when the profile is built). Any other field a bank sends (34 extended PAN, 35/45/36 track
# data, 52 PIN block, 55 chip data, or anything else) is stored as {"len": <characters>} only: its
# presence and size help diagnose a bank's message, its value is never written anywhere.
LOGGED_FIELDS = frozenset((
    "t", "2", "3", "4", "7", "11", "12", "13", "15", "18", "32", "33", "37", "39", "41", "42", "43", "47",
    "48", "49", "61", "62", "63", "64", "70", "90", "128",
))


def masked(fields: dict[str, str]) -> dict[str, object]:
    """What the message log may store of `fields`: allow-listed values, everything else by length only.

    The bitmaps ("p", "1") are left out: they follow from the fields present. Keys that are not field
    numbers (a client's own bookkeeping) are left out too.
    """
    out: dict[str, object] = {}
    for key, value in fields.items():
        if key in LOGGED_FIELDS:
            out[key] = mask_pan(value) if key == "2" else value
        elif key.isdigit() and key != "1":
            out[key] = {"len": len(value) if isinstance(value, (str, bytes)) else 0}
    return out


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: ConnectionState,
                 router: Router, message_log: MessageSink | None, settings: Iso8583Config,
                 peer: tuple[str, int] | None = None):
        self.reader = reader
        self.writer = writer
        self.state = state
        self.router = router
        self.message_log = message_log
        self.settings = settings
        self.id = f"iso-{next(_connection_ids)}"
        # The bank's address: the socket's peer, or the one a trusted balancer's PROXY header named.
        peer = peer or writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.log = log.bind(connection=self.id, bank=state.bank.code, peer=self.peer)
        self.in_flight: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(settings.max_in_flight)
        self.opened_at = self.last_traffic = time.monotonic()
        # Set by the first complete frame (a keep-alive counts: it is a whole frame of length zero).
        self.framed = False
        self.closing = False
        state.answer_row = self._answer_row

    @property
    def framing(self) -> str:
        return self.state.bank.framing

    @property
    def mac_key(self) -> bytes | None:
        return bytes.fromhex(self.state.bank.mac_key) if self.state.bank.mac_key else None

    async def run(self) -> None:
        self.log.info("connection opened")
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._read_loop()
        finally:
            watchdog.cancel()
            await self.drain(timeout_s=10)
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), timeout=2)
            except (OSError, asyncio.TimeoutError):
                pass
            self.log.info("connection closed")

    async def _read_loop(self) -> None:
        # No timeout around a read: cancelling one mid-frame would desynchronise the stream. The first-frame
        # and idle timeouts are kept by the watchdog, which closes the transport.
        while not self.closing:
            await self.slots.acquire()  # back-pressure: no reading while max_in_flight are in progress
            try:
                raw = await framing.read_frame(self.reader, self.framing, self.settings.max_message_bytes,
                                               on_keep_alive=self._keep_alive)
            except framing.FramingError as exc:
                self.slots.release()
                self._log_event("in", "framing_error", str(exc))
                self.log.warning("untrusted stream; closing", reason=str(exc))
                return
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                self.slots.release()
                return
            except BaseException:
                self.slots.release()
                raise
            if raw is None:
                self.slots.release()
                return
            self.framed = True
            self.last_traffic = time.monotonic()
            metrics.IN_FLIGHT.labels("iso").inc()
            task = asyncio.create_task(self._handle(raw, time.monotonic()))
            self.in_flight.add(task)
            task.add_done_callback(self._done)

    def _keep_alive(self) -> None:
        self.framed = True
        self.last_traffic = time.monotonic()

    def _done(self, task: asyncio.Task) -> None:
        metrics.IN_FLIGHT.labels("iso").dec()
        self.in_flight.discard(task)
        self.slots.release()

    async def drain(self, timeout_s: float) -> None:
        """Let the requests in flight finish (graceful shutdown); their answers are still sent."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=timeout_s)

    def stop_reading(self) -> None:
        self.closing = True
        try:
            # Stop the transport first: bytes the bank sends after feed_eof() would otherwise hit
            # StreamReader.feed_data ("feed_data after feed_eof"), a fatal error that kills the
            # transport and with it the answers of the requests still in flight.
            # A stream's transport reads too (typeshed types StreamWriter.transport as WriteTransport only).
            cast(asyncio.Transport, self.writer.transport).pause_reading()
        except Exception:  # noqa: BLE001 - already closing or closed
            pass
        try:
            self.reader.feed_eof()
        except Exception:  # noqa: BLE001
            pass

    # -- one message -------------------------------------------------------------------------------

    async def _handle(self, raw: bytes, started: float) -> None:
        _started.set(started)  # each message is its own task: the value is this message's
        try:
            request = decode(raw)
        except IsoFormatError as exc:
            self._log_row("in", exc.fields or {}, event="format_error", detail=exc.reason)
            if exc.mti and is_request(exc.mti):
                fields = dict(exc.fields or {})
                fields["t"] = exc.mti
                await self._answer(self.router.refuse(fields, RC.FORMAT_ERROR, detail=exc.reason), started,
                                   fields)
            else:
                self.log.warning("undecodable message dropped", reason=exc.reason)
            return
        key = self.mac_key
        if not is_request(request["t"]):
            # An answer from the bank (e.g. to the gateway's echo): logged, nothing to send. Where the bank
            # has a MAC key its answers carry a MAC too; a missing or wrong one is a security event.
            if key is not None and not mac.verify(raw, key):
                self.log.warning("security: missing or wrong MAC on an answer", mti=request["t"],
                                 stan=request.get("11"))
                self._log_row("in", request, event="security", detail="missing or wrong MAC")
            else:
                self._log_row("in", request)
            return
        self._log_row("in", request)
        if key is not None and not mac.verify(raw, key):
            self.log.warning("security: missing or wrong MAC", mti=request["t"], stan=request.get("11"))
            outcome = self.router.refuse(request, RC.DO_NOT_HONOUR, detail="missing or wrong MAC", event="security")
            await self._answer(outcome, started, request)
            return
        try:
            outcome = await self.router.handle(request, self.state)
        except Exception:  # noqa: BLE001 - one answer, logged once with context
            self.log.exception("unexpected failure", mti=request["t"], stan=request.get("11"))
            outcome = self.router.refuse(request, RC.SYSTEM_ERROR, detail="unexpected failure")
        await self._answer(outcome, started, request)

    async def _answer(self, outcome: Outcome, started: float, request: dict[str, str]) -> None:
        data = self._encode(outcome.fields)
        try:
            self.writer.write(framing.frame(data, self.framing))
            await self.writer.drain()
        except (ConnectionError, OSError, RuntimeError):  # RuntimeError: uvloop, transport already closed
            self.log.warning("answer not delivered: connection lost", stan=request.get("11"), rc=outcome.rc)
        self.last_traffic = time.monotonic()
        elapsed_ms = (time.monotonic() - started) * 1000
        metrics.MESSAGES.labels("iso", self.state.bank.code, request.get("t", "?"), request.get("3", "-"),
                                outcome.rc).inc()
        metrics.LATENCY.labels("iso", request.get("t", "?")).observe(elapsed_ms / 1000)
        if not outcome.logged and self.message_log is not None:  # an approval's was written with the payment
            self.message_log.add(self._outcome_row(outcome, elapsed_ms))
        self.log.info("answered", mti=outcome.fields.get("t"), pc=request.get("3"), stan=request.get("11"),
                      rrn=request.get("37"), rc=outcome.rc, ntpd=outcome.ntpd, elapsed_ms=round(elapsed_ms, 2),
                      detail=outcome.detail)

    def _encode(self, fields: dict[str, str]) -> bytes:
        key = self.mac_key
        try:
            return mac.sign(fields, key) if key is not None else encode(fields)
        except ValueError as exc:
            # An echoed field that cannot be re-encoded: answer with the essentials only.
            self.log.warning("answer re-encoded without echoed fields", reason=str(exc))
            minimal: dict[str, str] = {k: fields[k] for k in ("t", "7", "11", "15", "39") if k in fields}
            return mac.sign(minimal, key) if key is not None else encode(minimal)

    # -- timeouts and echo after silence -----------------------------------------------------------

    async def _watchdog(self) -> None:
        """Close a connection with no complete frame ``first_frame_timeout_s`` after opening, or silent
        for ``idle_timeout_s``; after ``echo_after_s`` of silence send an 0800/301."""
        echo_s, idle_s = self.settings.echo_after_s, self.settings.idle_timeout_s
        first_s = self.settings.first_frame_timeout_s
        tick_s = min(1.0, max(0.05, min(echo_s, first_s) / 10))
        echoed_at = float("-inf")
        while True:
            now = time.monotonic()
            if not self.framed and now - self.opened_at >= first_s:
                # A peer that never completes a frame holds a connection (and a file descriptor) for
                # nothing: with enough of them both channels would refuse service.
                detail = f"no complete frame within {first_s} s of opening; closed"
                self.log.warning("security: " + detail)
                self._log_event("in", "security", detail)
                self._close_now()
                return
            silent = now - self.last_traffic
            if silent >= idle_s:
                self.log.info("idle timeout; closing")
                self._close_now()
                return
            if silent >= echo_s and now - echoed_at >= echo_s:
                echoed_at = now
                await self._send_echo()
            await asyncio.sleep(tick_s)

    def _close_now(self) -> None:
        self.stop_reading()
        try:
            self.writer.transport.abort()
        except Exception:  # noqa: BLE001 - already closed
            pass

    async def _send_echo(self) -> None:
        fields = {"t": "0800", "7": datetime.now(UTC).strftime("%m%d%H%M%S"),
                  "11": f"{next(_stan) % 1_000_000:06d}", "32": self.state.bank.code, "70": "301"}
        try:
            self.writer.write(framing.frame(self._encode(fields), self.framing))
            await self.writer.drain()
        except (ConnectionError, OSError, RuntimeError):  # RuntimeError: uvloop, transport already closed
            return
        self._log_row("out", fields, event="echo")

    # -- logging -----------------------------------------------------------------------------------

    def _log_event(self, direction: str, event: str, detail: str) -> None:
        self._log_row(direction, {}, event=event, detail=detail)

    def _log_row(self, direction: str, fields: dict[str, str], *, event: str = "message", detail: str | None = None,
                 rc: str | None = None, ntpd: str | None = None, bill_id: str | None = None,
                 message_key: str | None = None, elapsed_ms: float | None = None) -> None:
        if self.message_log is None:
            return
        self.message_log.add(self._row(direction, fields, event=event, detail=detail, rc=rc, ntpd=ntpd,
                                       bill_id=bill_id, message_key=message_key, elapsed_ms=elapsed_ms))

    def _row(self, direction: str, fields: dict[str, str], *, event: str = "message", detail: str | None = None,
             rc: str | None = None, ntpd: str | None = None, bill_id: str | None = None,
             message_key: str | None = None, elapsed_ms: float | None = None) -> LogRow:
        return LogRow(
            logged_at=datetime.now(UTC), channel="iso", direction=direction, event=event,
            bank_code=self.state.bank.code, connection_id=self.id, peer=self.peer, mti=fields.get("t"),
            processing_code=fields.get("3"), stan=fields.get("11"), transmitted=fields.get("7"),
            rrn=fields.get("37"), response_code=rc or fields.get("39"), bill_id=bill_id or fields.get("61"),
            ntpd=ntpd or fields.get("47"), message_key=message_key, elapsed_ms=elapsed_ms,
            fields=masked(fields), detail=detail,
        )

    def _answer_row(self, outcome: Outcome) -> LogRow | None:
        """The 'out' row of an approval, written by the payment's own transaction (Router.answer_log)."""
        if self.message_log is None:
            return None
        return self._outcome_row(outcome, (time.monotonic() - _started.get(time.monotonic())) * 1000)

    def _outcome_row(self, outcome: Outcome, elapsed_ms: float) -> LogRow:
        """The 'out' row of an answer, whichever writer stores it."""
        return self._row("out", outcome.fields, event=outcome.event, detail=outcome.detail, rc=outcome.rc,
                         ntpd=outcome.ntpd, bill_id=outcome.bill_id, message_key=outcome.message_key,
                         elapsed_ms=elapsed_ms)
