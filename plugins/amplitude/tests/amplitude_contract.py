"""A local stand-in for Amplitude's HTTP V2 API that enforces its documented contract.

Amplitude cannot be reached from the test machines, so this server plays it on loopback,
checking what amplitude.com/docs/apis/analytics/http-v2 requires and answering as it says:

- POST /2/httpapi with ``Content-Type: application/json`` and a JSON body
  ``{"api_key": str, "events": [...], "options": {"min_id_length": int}?}``. A missing
  ``api_key``/``events`` is a 400 with ``missing_field``; a wrong key is
  ``400 {"error": "Invalid API key: <key>"}`` (the key echoed back, as Amplitude does).
- At most 2000 events and 1 MB per request, else ``413 Payload too large``.
- Each event needs ``event_type`` and a ``user_id`` or ``device_id`` of at least
  ``min_id_length`` characters (default 5); ``time`` is integer milliseconds; ``$identify``
  carries ``user_properties`` made of operations (``$set``...). A request with invalid
  events is a 400 listing them by index in ``events_with_invalid_fields``,
  ``events_with_missing_fields`` or ``events_with_invalid_id_lengths``; *none* of its
  events is ingested.
- Users or devices over their rate make a 429 listing ``throttled_events`` (and
  ``exceeded_daily_quota_users`` for those over the daily quota); nothing is ingested.
- 200 ``{"code": 200, "events_ingested": n, "payload_size_bytes": n, "server_upload_time": ms}``.

A request the connector should never build (wrong path, method or content type, a body that
is not the documented object) is a *violation*, answered 400 and recorded; the test fixture
fails any test with a violation it did not expect.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from headwater_amplitude import AmplitudeDestination

API_KEY = "amp-key-0123456789abcdef"
MAX_EVENTS = 2000
MAX_BODY_BYTES = 1_000_000
USER_PROPERTY_OPERATIONS = {
    "$set",
    "$setOnce",
    "$add",
    "$append",
    "$prepend",
    "$unset",
    "$preInsert",
    "$postInsert",
    "$remove",
    "$clearAll",
}

Make = Callable[..., AmplitudeDestination]
"""The ``make_destination`` fixture: (region, endpoint="server", **config) -> destination."""


@dataclass
class Context:
    """What the daemon hands a destination (headwater_spec.ConnectorContext)."""

    instance_id: str = "product-analytics"
    region: str = "us"
    endpoint: str | None = None
    data_dir: Path = Path(".")
    logger: logging.Logger = field(
        default_factory=lambda: logging.getLogger("headwater.destination.product-analytics")
    )


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: str  # "reply" | "hang" | "drop"
    reply: Reply | None = None
    seconds: float = 0.0
    path: str | None = None


class ContractServer:
    """Threaded HTTP server on 127.0.0.1 with scripted faults; subclasses implement ``answer``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ContractServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, if given) with this reply."""
        for _ in range(times):
            self._faults.append(_Fault("reply", Reply(status, body, headers or {}), path=path))

    def hang_next(self, seconds: float = 30.0, *, path: str | None = None) -> None:
        """Accept the next request and answer nothing for ``seconds`` (or until stop)."""
        self._faults.append(_Fault("hang", seconds=seconds, path=path))

    def drop_next(self, *, path: str | None = None) -> None:
        """Close the connection of the next request without an answer."""
        self._faults.append(_Fault("drop", path=path))

    def violation(self, message: str) -> Reply:
        self.violations.append(message)
        return Reply(400, {"error": f"contract violation: {message}"})

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    self._faults.remove(fault)
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = raw
                if headers.get("content-encoding", "").lower() == "gzip":
                    try:
                        body = gzip.decompress(raw)
                    except OSError:
                        body = b"\x00not gzip"
                request = Request(self.command, parts.path, query, headers, raw, body)
                server.requests.append(request)
                fault = server._take_fault(parts.path)
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault is not None and fault.kind == "hang":
                    server._release.wait(fault.seconds)
                    reply = Reply(504, {"error": "gave up"})
                elif fault is not None and fault.reply is not None:
                    reply = fault.reply
                else:
                    reply = server.answer(request)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                if isinstance(reply.body, bytes):
                    payload = reply.body
                    ctype = "text/plain"
                else:
                    payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                    ctype = "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler


def basic_credentials(headers: dict[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = base64.b64decode(token).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class AmplitudeAPI(ContractServer):
    """Amplitude's HTTP V2 endpoint for one project."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_body_bytes = MAX_BODY_BYTES
        self.events: list[dict[str, Any]] = []
        self.throttled_users: set[str] = set()
        self.quota_users: set[str] = set()

    def answer(self, request: Request) -> Reply:
        if request.path != "/2/httpapi":
            return self.violation(f"{request.method} {request.path}: not the HTTP V2 endpoint")
        if request.method != "POST":
            return self.violation(f"/2/httpapi needs POST, got {request.method}")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.violation(
                f"/2/httpapi Content-Type must be application/json, got {ctype!r}"
            )
        if len(request.body) > self.max_body_bytes:
            return Reply(413, {"code": 413, "error": "Payload too large"})
        try:
            body = request.json()
        except ValueError:
            return self.violation("/2/httpapi body is not JSON")
        if not isinstance(body, dict):
            return self.violation("/2/httpapi body must be an object with api_key and events")
        for name in ("api_key", "events"):
            if name not in body:
                return Reply(
                    400,
                    {"code": 400, "error": "Request missing required field", "missing_field": name},
                )
        if body["api_key"] != self.api_key:
            return Reply(400, {"code": 400, "error": f"Invalid API key: {body['api_key']}"})
        events = body["events"]
        if not isinstance(events, list) or not events:
            return self.violation("`events` must be a non-empty array")
        if len(events) > MAX_EVENTS:
            return Reply(413, {"code": 413, "error": "Payload too large"})
        options = body.get("options") or {}
        min_id = options.get("min_id_length", 5) if isinstance(options, dict) else 5
        invalid: dict[str, list[int]] = {}
        missing: dict[str, list[int]] = {}
        short: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                return self.violation("each event must be an object")
            for kind, name in self._check(event, min_id):
                target = {"invalid": invalid, "missing": missing, "short": short}[kind]
                target.setdefault(name, []).append(index)
        if invalid or missing or short:
            answer: dict[str, Any] = {"code": 400, "error": "Request has invalid events"}
            if invalid:
                answer["events_with_invalid_fields"] = invalid
            if missing:
                answer["events_with_missing_fields"] = missing
            if short:
                answer["events_with_invalid_id_lengths"] = short
            return Reply(400, answer)
        throttled = [i for i, e in enumerate(events) if e.get("user_id") in self.throttled_users]
        if throttled:
            counts = {u: 31 for u in self.throttled_users}
            return Reply(
                429,
                {
                    "code": 429,
                    "error": "Too many requests for some devices and users",
                    "eps_threshold": 30,
                    "throttled_devices": {},
                    "throttled_users": counts,
                    "throttled_events": throttled,
                    "exceeded_daily_quota_users": {u: 500001 for u in self.quota_users},
                    "exceeded_daily_quota_devices": {},
                },
            )
        self.events.extend(events)
        return Reply(
            200,
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(request.body),
                "server_upload_time": int(time.time() * 1000),
            },
        )

    def _check(self, event: dict[str, Any], min_id: int) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        event_type = event.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            problems.append(("missing", "event_type"))
        elif event_type.startswith("[Amplitude]") or (
            event_type.startswith("$") and event_type not in ("$identify", "$groupidentify")
        ):
            problems.append(("invalid", "event_type"))
        user_id, device_id = event.get("user_id"), event.get("device_id")
        if user_id is None and device_id is None:
            problems.append(("missing", "user_id"))
        for name, value in (("user_id", user_id), ("device_id", device_id)):
            if value is not None and (not isinstance(value, str) or len(value) < min_id):
                problems.append(("short", name))
        when = event.get("time")
        if when is not None and (not isinstance(when, int) or isinstance(when, bool) or when < 0):
            problems.append(("invalid", "time"))
        insert_id = event.get("insert_id")
        if insert_id is not None and not isinstance(insert_id, str):
            problems.append(("invalid", "insert_id"))
        if event_type == "$identify":
            props = event.get("user_properties")
            if (
                not isinstance(props, dict)
                or not props
                or not set(props) <= USER_PROPERTY_OPERATIONS
            ):
                problems.append(("invalid", "user_properties"))
            if "event_properties" in event:
                problems.append(("invalid", "event_properties"))
        return problems

    def unique_events(self) -> list[dict[str, Any]]:
        """What Amplitude keeps: one event per (device_id or user_id, insert_id)."""
        seen: set[tuple[Any, Any]] = set()
        out = []
        for event in self.events:
            key = (event.get("device_id") or event.get("user_id"), event.get("insert_id"))
            if event.get("insert_id") is None or key not in seen:
                seen.add(key)
                out.append(event)
        return out
