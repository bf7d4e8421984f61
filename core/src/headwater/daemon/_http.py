"""The daemon's HTTP/1.1 server: asyncio + httptools, no framework.

Chosen by measurement (`benchmarks/bench_ingest_http.py`): with 100-event bodies the
per-request cost of a framework is small next to decoding and committing, but a hand-written
protocol has no per-request task, middleware or ASGI translation, and the hot path is one
parser callback sequence plus one handler call.

What it does, and why:
- keep-alive and pipelining: requests of one connection are answered in order, one handler
  at a time; reading pauses when too many are queued, so a client cannot buffer unbounded
  work in the server;
- a body cap: a declared ``Content-Length`` over the cap is refused before any of it is
  buffered (a moderately larger body is read and dropped so the client sees the 413
  instead of a reset connection; a huge one closes the connection);
- ``Expect: 100-continue`` is answered, as curl sends it for bodies over 1 KB;
- idle keep-alive connections close after ``keepalive_timeout``, and so does a connection
  whose request has not fully arrived within it (a slow-headers attack holds nothing);
- graceful stop: stop listening, close idle connections, let every request already received
  finish (its response says ``Connection: close``), then close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus

import httptools

from headwater_spec import HttpRequest, HttpResponse

Dispatch = Callable[[HttpRequest], Awaitable[HttpResponse]]

MAX_QUEUED = 16
"""Pipelined requests held per connection before reading pauses."""
DISCARD_FACTOR = 8
"""A body up to this many times the cap is read and dropped to answer 413 cleanly."""
MAX_HEADER_BYTES = 64 * 1024

_STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Unknown\r\n".encode("latin-1")


class _Clock:
    """The Date header, formatted once per second."""

    def __init__(self) -> None:
        self._second = 0
        self._header = b""

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._header = b"date: " + formatdate(now, usegmt=True).encode("latin-1") + b"\r\n"
        return self._header


def _error(status: int, code: str, message: str) -> HttpResponse:
    return HttpResponse.error(status, code, message)


class HttpServer:
    """One listening socket, its connections, and their graceful shutdown."""

    def __init__(
        self,
        dispatch: Dispatch,
        *,
        max_body: int,
        keepalive_timeout: float = 75.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.max_body = max_body
        self.keepalive_timeout = keepalive_timeout
        self.logger = logger or logging.getLogger("headwater.http")
        self.connections: set[_Connection] = set()
        self.draining = False
        self.clock = _Clock()
        self._server: asyncio.Server | None = None
        self._all_closed: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the bound address (port 0 picks a free port)."""
        loop = asyncio.get_running_loop()
        self._all_closed = asyncio.Event()
        self._hurry = asyncio.Event()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=1024
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        return self.host, self.port

    def hurry(self) -> None:
        """End the grace period of a running ``stop`` now."""
        if self._hurry is not None:
            self._hurry.set()

    def _closed(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if self.draining and not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, finish requests already received, close; abort after ``grace``."""
        self.draining = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.drain()
        if self.connections and self._all_closed is not None and self._hurry is not None:
            waiters = [
                asyncio.ensure_future(self._all_closed.wait()),
                asyncio.ensure_future(self._hurry.wait()),
            ]
            await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if self.connections:
                self.logger.warning(
                    "connections still open after the grace period; closing them",
                    extra={"fields": {"connections": len(self.connections)}},
                )
        for conn in list(self.connections):
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client = ""
        self.queue: deque[tuple[HttpRequest, bool, bool, HttpResponse | None]] = deque()
        self.busy = False
        self.closed = False
        self.in_message = False
        self.reading_paused = False
        self.writing_paused: asyncio.Future[None] | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._size = 0
        self._refuse: HttpResponse | None = None
        self._close_after_refuse = False
        self.refused = False

    # -- transport events ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = f"{peer[0]}:{peer[1]}"
        self.server.connections.add(self)
        if self.server.draining:
            transport.close()
            return
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.writing_paused is not None and not self.writing_paused.done():
            self.writing_paused.set_result(None)
        self.server._closed(self)

    def pause_writing(self) -> None:
        if self.writing_paused is None or self.writing_paused.done():
            self.writing_paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writing_paused is not None and not self.writing_paused.done():
            self.writing_paused.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_error(400, "upgrade_not_supported", "protocol upgrades are not served"))
        except httptools.HttpParserError:
            self._fail(_error(400, "bad_request", "malformed HTTP/1.1 request"))

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self._arm_idle()  # the whole request must arrive within the timeout (slowloris)
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._size = 0
        self._refuse = None
        self._close_after_refuse = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("headers too large")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        declared = self._headers.get("content-length", "")
        cap = self.server.max_body
        if declared.isdigit() and int(declared) > cap:
            self._refuse = _too_large(cap)
            self._close_after_refuse = int(declared) > cap * DISCARD_FACTOR
            if self._close_after_refuse:
                self._answer_now(self._refuse)
            return
        if self._headers.get("expect", "").lower() == "100-continue" and self.transport:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._refuse is not None:
            if self._size > self.server.max_body * DISCARD_FACTOR and not self._close_after_refuse:
                self._close_after_refuse = True
                self._answer_now(self._refuse)
            return
        if self._size > self.server.max_body:
            self._refuse = _too_large(self.server.max_body)
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self._close_after_refuse:
            return
        method = self.parser.get_method().decode("latin-1")
        keep_alive = bool(self.parser.should_keep_alive())
        http10 = self.parser.get_http_version() == "1.0"
        if self._refuse is not None:
            request = HttpRequest(method=method, path="", client=self.client)
            self._enqueue(request, keep_alive, http10, self._refuse)
            return
        path, _, query = self._url.partition(b"?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = HttpRequest(
            method=method,
            path=path.decode("latin-1"),
            query=query.decode("latin-1"),
            headers=self._headers,
            body=body,
            client=self.client,
        )
        self._body = []
        self._enqueue(request, keep_alive, http10, None)

    # -- answering -----------------------------------------------------------------------

    def _enqueue(
        self, request: HttpRequest, keep_alive: bool, http10: bool, ready: HttpResponse | None
    ) -> None:
        self.queue.append((request, keep_alive, http10, ready))
        if len(self.queue) >= MAX_QUEUED and self.transport and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            while self.queue and not self.closed:
                request, keep_alive, http10, response = self.queue.popleft()
                if (
                    self.reading_paused
                    and not self.refused
                    and len(self.queue) < MAX_QUEUED // 2
                    and self.transport
                ):
                    self.reading_paused = False
                    self.transport.resume_reading()
                if response is None:
                    response = await self._call(request)
                if self.closed:
                    return
                if self.server.draining and not self.queue:
                    keep_alive = False
                self._write(response, keep_alive, http10)
                if not keep_alive:
                    self._close()
                    return
                if self.writing_paused is not None:
                    await self.writing_paused
        finally:
            self.busy = False
            if not self.closed:
                if self.server.draining and not self.in_message:
                    self._close()
                else:
                    self._arm_idle()

    async def _call(self, request: HttpRequest) -> HttpResponse:
        try:
            return await self.server.dispatch(request)
        except Exception:
            self.server.logger.exception(
                "request handler failed",
                extra={"fields": {"method": request.method, "path": request.path}},
            )
            return _error(500, "internal_error", "the server failed to handle the request")

    def _write(self, response: HttpResponse, keep_alive: bool, http10: bool) -> None:
        if self.transport is None or self.closed:
            return
        body = response.body
        parts = [
            _status_line(response.status),
            self.server.clock.date_header(),
            b"content-length: %d\r\n" % len(body),
        ]
        for name, value in response.headers:
            parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        elif http10:
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        parts.append(body)
        self.transport.write(b"".join(parts))

    def _answer_now(self, response: HttpResponse) -> None:
        """Stop reading and answer ``response`` as the last one on this connection, after
        the requests already queued (a body too large to read, a request that cannot be
        parsed): responses never go out of order, and none already owed is dropped."""
        self.refused = True
        if self.transport is not None:
            self.transport.pause_reading()
        request = HttpRequest(method="", path="", client=self.client)
        self._enqueue(request, False, False, response)

    def _fail(self, response: HttpResponse) -> None:
        if not self.refused:
            self._answer_now(response)

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def drain(self) -> None:
        """Called when the server stops: close now if idle, else after the queued requests."""
        if not self.busy and not self.in_message:
            self._close()

    def _arm_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        loop = asyncio.get_running_loop()
        self.idle_timer = loop.call_later(self.server.keepalive_timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        """Idle too long, or a request arriving too slowly: close (a handler running keeps
        the connection; the timer is re-armed when it is done)."""
        if not self.busy:
            self._close()


def _too_large(cap: int) -> HttpResponse:
    return _error(
        413, "request_too_large", f"the request body is over {cap} bytes; send smaller batches"
    )
