"""The HTTP connection limits and the answers to requests the HTTP parser refuses (spec/http-api.md,
operations.md "[http]").

aiohttp's own ``RequestHandler`` closes idle keep-alive connections (``keepalive_timeout``) but gives a
connection that trickles a request head forever the same long time, bounds each header line but not the
head as a whole, and answers a head it cannot parse with ``text/plain`` holding the parser's message, which
quotes the offending header line, and logs that message with a traceback through the stdlib logger. A
bearer token in a header with a stray CR, or an over-long cookie, would end up in the answer and the log.

``GatewayRequestHandler`` adds:

- a head deadline (``head_timeout_s``): from the connection's start, and from the first byte of each later
  request, the head must be complete within it, else the connection is closed;
- a head size limit (``max_head_bytes``): larger heads are answered 431;
- parser refusals answered as problem details with a fresh ``X-Request-Id``, and logged by kind only.

The idle time between requests stays aiohttp's ``keepalive_timeout`` (``idle_timeout_s``).
"""
from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, TypedDict

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from gateway import proxy_protocol
from gateway.config import address_in
from gateway.http.problems import TITLES

log = structlog.get_logger("gateway.http")

_TOO_MANY_HEADERS = "Too many headers received"


class HeadTooLarge(BadHttpMessage):
    """A request head over ``max_head_bytes`` (raised by no parser: made here)."""

    def __init__(self) -> None:
        super().__init__("request head too large")


class GatewayRequestHandler(RequestHandler):
    """aiohttp's protocol with the gateway's head deadline, head size limit and parser-error answers."""

    def __init__(self, manager: web.Server, *, head_timeout_s: float, max_head_bytes: int,
                 proxy_protocol_from: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._head_timeout_s = head_timeout_s
        self._max_head_bytes = max_head_bytes
        self._proxy_from = proxy_protocol_from
        # A trusted balancer's connection: the bytes of its PROXY header until complete, then None.
        self._proxy_buffer: bytearray | None = None
        self._proxied: tuple[str, int] | None = None
        self._head_handle: asyncio.TimerHandle | None = None
        self._head_bytes: int | None = None  # bytes of the head being received; None between requests
        self._refused = False
        self._last_payload: Any = None  # the body stream of the newest request parsed

    # -- the head deadline and size ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if self._proxy_from and peer and address_in(str(peer[0]), self._proxy_from):
            self._proxy_buffer = bytearray()
        self._start_head()

    @property  # aiohttp's is a cached property of the socket's peer
    def peername(self) -> Any:
        """The client: the socket's peer, or the address a trusted balancer's PROXY header named (what
        ``request.remote``, the allow lists and the limits per address see)."""
        if self._proxied is not None:
            return self._proxied
        return None if self.transport is None else self.transport.get_extra_info("peername")

    def _take_proxy_header(self, data: bytes) -> bytes | None:
        """Collect the PROXY header at the start of a balancer's connection; the bytes after it, once it is
        complete (None until then, or when the connection was closed for a bad header)."""
        assert self._proxy_buffer is not None
        self._proxy_buffer += data
        buffer = bytes(self._proxy_buffer)
        try:
            proxy_protocol.check_prefix(buffer)
            if len(buffer) < proxy_protocol.HEADER_BYTES:
                return None
            end = proxy_protocol.HEADER_BYTES + proxy_protocol.body_length(buffer[:proxy_protocol.HEADER_BYTES])
            if len(buffer) < end:
                return None
            proxied = proxy_protocol.parse(buffer[:proxy_protocol.HEADER_BYTES], buffer[proxy_protocol.HEADER_BYTES:end])
        except proxy_protocol.ProxyHeaderError as exc:
            log.warning("security: balancer connection without a valid PROXY header; closed", reason=str(exc),
                        peer=_peer(self))
            self._proxy_buffer = None
            self.force_close()
            if self.transport is not None:
                self.transport.abort()
            return None
        self._proxy_buffer = None
        # LOCAL (the balancer's own connection, e.g. its `httpchk GET /readyz`): served as the balancer's.
        self._proxied = proxied.source
        return buffer[end:]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._head_bytes = 0
        if self._head_handle is None:
            self._head_handle = self._loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _stop_head(self) -> None:
        self._head_bytes = None
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None

    def _head_timed_out(self) -> None:
        self._head_handle = None
        if self._head_bytes is None or self._force_close or self.transport is None:
            return
        # Only while the connection waits for a request: a request being handled is never cut here.
        if self._waiter is not None and not self._waiter.done() and not self._messages:
            log.info("http connection closed: request head not complete in time",
                     timeout_s=self._head_timeout_s, head_bytes=self._head_bytes)
            self.force_close()

    def _idle(self) -> bool:
        """Whether the connection waits for a new request (so that arriving bytes begin a request head)."""
        return (self._waiter is not None and not self._waiter.done() and not self._messages
                and self._payload_parser is None and not self._upgraded)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._force_close or self._close:
            return
        if self._proxy_buffer is not None:
            rest = self._take_proxy_header(data)
            if not rest:  # the header incomplete or refused, or complete with nothing after it yet
                return
            data = rest
        if self._head_bytes is None and data and self._idle():
            self._start_head()
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            # A head is complete (or refused by the parser): check the size of each new one.
            self._stop_head()
            index = queued
            while index < len(self._messages):
                message, payload = self._messages[index]
                if not isinstance(message, _ErrInfo) and _head_size(message) > self._max_head_bytes:
                    self._messages[index] = (_ErrInfo(431, HeadTooLarge(), ""), EMPTY_PAYLOAD)
                message, payload = self._messages[index]
                if not isinstance(message, _ErrInfo):
                    self._last_payload = payload
                elif self._fail_body_in_progress():
                    del self._messages[index]
                    continue
                else:
                    # Answered, then the connection is closed: nothing after a refused head is parsed.
                    self._refused = True
                index += 1
        elif self._head_bytes is not None and self._head_bytes > self._max_head_bytes:
            # Still no complete head, and already too long: answer now, read nothing more.
            self._stop_head()
            self._refused = True
            self._messages.append((_ErrInfo(431, HeadTooLarge(), ""), EMPTY_PAYLOAD))
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    def _fail_body_in_progress(self) -> bool:
        """A parse error inside a request's body (a bad chunk size): aiohttp's parser drops that body's stream
        without ending it, so its handler would wait for the rest of the body forever. The stream is failed
        instead: the request is answered 400 by the application, and the connection then closed (nothing
        after the error can be parsed). True when there was such a body."""
        payload = self._last_payload
        if payload is None or payload.is_eof() or payload is EMPTY_PAYLOAD:
            return False
        payload.set_exception(RequestPayloadError("malformed request body"))
        self._refused = True
        self._close = True  # no further request on this connection; the answer in progress is still sent
        return True

    # -- answers to what the parser refuses ----------------------------------------------------------

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Problem details instead of aiohttp's text answer. Nothing of the request is echoed or logged: the
        parser's message quotes the offending line, so only the kind of refusal is kept."""
        request_id = uuid.uuid4().hex
        if isinstance(exc, (HeadTooLarge, LineTooLong)) or (
                isinstance(exc, BadHttpMessage) and exc.message == _TOO_MANY_HEADERS):
            status = 431
        if isinstance(exc, HttpProcessingError) and status < 500:
            detail = (f"request head over {self._max_head_bytes} bytes" if status == 431
                      else "malformed request: refused by the HTTP parser")
            log.warning("http request refused by the parser", request_id=request_id, status=status,
                        refusal=type(exc).__name__, peer=_peer(self))
            body: dict[str, Any] = {"type": f"https://gateway.bapenda/problems/{status}",
                                    "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
            if status == 400:
                body["response_code"] = "30"
        else:
            # Our own failure outside the application's middleware: logged once, with its traceback.
            log.error("http request failed outside the application", request_id=request_id, status=status,
                      error=type(exc).__name__ if exc else None, exc_info=exc)
            status = 500 if status < 500 else status
            body = {"type": f"https://gateway.bapenda/problems/{status}", "title": TITLES.get(status, "Error"),
                    "status": status, "detail": "system malfunction", "response_code": "96"}
        if request.writer.output_size > 0:
            raise ConnectionError("answer already started; cannot answer the error")
        response = web.Response(status=status, body=json.dumps(body), content_type="application/problem+json",
                                headers={"X-Request-Id": request_id})
        response.force_close()
        return response


def _head_size(message: Any) -> int:
    """The size of a parsed request head, as sent give or take trailing blanks of its values."""
    line = len(message.method) + len(message.path.encode("utf-8", "surrogateescape")) + 12  # " ", " HTTP/1.1\r\n"
    return line + sum(len(name) + len(value) + 4 for name, value in message.raw_headers) + 2


def _peer(handler: RequestHandler) -> str:
    peer = handler.peername
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class _Limits(TypedDict):
    """The head limits (and trusted balancers) a ``GatewayRequestHandler`` takes as keyword arguments."""

    head_timeout_s: float
    max_head_bytes: int
    proxy_protocol_from: tuple[str, ...]


class GatewayServer(web.Server):
    """aiohttp's low-level server making ``GatewayRequestHandler`` connections."""

    def __init__(self, *args: Any, head_timeout_s: float, max_head_bytes: int,
                 proxy_protocol_from: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._limits: _Limits = {"head_timeout_s": head_timeout_s, "max_head_bytes": max_head_bytes,
                                 "proxy_protocol_from": proxy_protocol_from}

    def __call__(self) -> GatewayRequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, **self._kwargs, **self._limits)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose server is a ``GatewayServer``. Every other aiohttp limit is a runner argument:
    ``keepalive_timeout`` (the idle time between requests), ``max_line_size`` and ``max_field_size``."""

    def __init__(self, app: web.Application, *, head_timeout_s: float, max_head_bytes: int,
                 proxy_protocol_from: tuple[str, ...] = (), **kwargs: Any):
        super().__init__(app, **kwargs)
        self._limits: _Limits = {"head_timeout_s": head_timeout_s, "max_head_bytes": max_head_bytes,
                                 "proxy_protocol_from": proxy_protocol_from}

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        # The application's handler and request factory, and the protocol options the runner gathered.
        return GatewayServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=asyncio.get_running_loop(),
                             **plain._kwargs, **self._limits)
