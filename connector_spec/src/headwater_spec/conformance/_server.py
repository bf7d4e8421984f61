"""A real HTTP server on loopback that plays the connector's service in the suite.

Why a real server and not a mocked client: the suite must see what the connector really
does on the wire (its HTTP client, its timeouts, its connection handling), so a connector
passes the same way it will behave against the real service. The server runs in a thread
of its own, so it keeps answering while the test's event loop awaits the connector.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import zlib
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

import msgspec

HANG_LIMIT = 120.0
"""Longest a hanging answer is held, so a forgotten server never blocks a process forever."""

POLL_INTERVAL = 0.02
"""How often the serving thread looks for ``stop``: the most a test waits for its server."""


class RecordedRequest(msgspec.Struct, frozen=True):
    """One request the server received; ``body`` is decompressed when it was gzip/deflate."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    raw_body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def params(self) -> dict[str, str]:
        """Query parameters, first value of each."""
        return {k: v[0] for k, v in parse_qs(self.query).items()}

    def json(self) -> Any:
        return json.loads(self.body)

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) of an ``Authorization: Basic`` header, or None without a valid one."""
        scheme, _, token = self.header("authorization").partition(" ")
        if scheme.lower() != "basic" or not token:
            return None
        try:
            user, sep, password = base64.b64decode(token).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


class Reply(msgspec.Struct, frozen=True):
    """How the server answers: a status, a body and headers, or one of two faults.

    ``hang`` accepts the request and never answers (a timeout for the client); ``drop``
    closes the connection without an answer (a protocol error for the client).
    """

    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    hang: bool = False
    drop: bool = False

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Reply:
        return cls(
            status=status,
            body=json.dumps(value).encode(),
            headers=(("Content-Type", "application/json"), *headers),
        )


Handler = Callable[[RecordedRequest], Reply]


class LoopbackServer:
    """The plumbing both servers share: a threaded HTTP/1.1 server on 127.0.0.1 that records
    every request and answers with the ``Reply`` that ``_reply_for`` gives.

    ``url`` is where it listens; the serving thread starts on the first use of ``url`` or
    ``port`` (tests that never use the server pay nothing); ``stop`` releases hanging
    answers and closes the socket. Not exported: subclass ``ServiceServer`` or
    ``ContractServer``.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port; asking for it starts the serving thread."""
        self._ensure_serving()
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Make the server ready; it listens already, and serves from the first use of
        ``url``/``port``."""
        return self

    def _ensure_serving(self) -> None:
        with self._lock:
            if self._thread is not None or self._release.is_set():
                return
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": POLL_INTERVAL},
                name="headwater-conformance-server",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._release.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def received(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        """The answer to ``request`` (already recorded); called on the serving thread."""
        raise NotImplementedError

    def _serve_request(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
        return self._reply_for(request)


class ServiceServer(LoopbackServer):
    """A loopback HTTP/1.1 server with a scripted answer and a record of every request.

    Set ``reply`` for a fixed answer or ``handler`` for one computed per request (a source's
    upstream API, say). ``url`` is where it listens; ``refused_url()`` is one where nothing
    does.
    """

    def __init__(self) -> None:
        self.reply: Reply = Reply()
        self.handler: Handler | None = None
        super().__init__()

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            handler, reply = self.handler, self.reply
        return handler(request) if handler is not None else reply


def refused_url() -> str:
    """A loopback URL where nothing listens, so connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _decode_body(raw: bytes, encoding: str) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, zlib.error, EOFError):
        return raw
    return raw


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path, _, query = self.path.partition("?")
            request = RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers=headers,
                body=_decode_body(raw, headers.get("content-encoding", "").lower()),
                raw_body=raw,
            )
            reply = server._serve_request(request)
            if reply.hang:
                server._release.wait(HANG_LIMIT)
                self.close_connection = True
                return
            if reply.drop:
                self.close_connection = True
                return
            body = b"" if reply.status in (204, 304) else reply.body
            try:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:  # the client gave up (its timeout): nothing left to answer
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the suite reads what it needs from ``requests``."""

    return _Handler
