"""A local stand-in for Customer.io's Track API that enforces its documented contract.

Customer.io cannot be reached from the test machines, so this server plays a workspace on
loopback, checking what docs.customer.io/api/track/ requires and answering as it says:

- Every call uses HTTP Basic auth with the Site ID as user and the Track API key as
  password; anything else is a 401.
- ``POST /api/v2/batch``: ``{"batch": [...]}`` of person operations (``identifiers`` with
  exactly one of ``id``/``email``/``cio_id``; ``action`` identify, event, page, screen or
  merge; events, pages and screens need a ``name``; ``id`` must be a ULID; ``timestamp`` is
  Unix seconds; a merge's ``primary`` must already exist). The batch must be under 500 KB
  (the reference states the limit, not the status: this server answers 413) and each item
  32 KB or less. Valid items are applied; invalid ones come back in a 207 with
  ``errors[{batch_index, reason, field, message}]``; a body that is not a batch is a 400.
- ``POST /api/v1/events``: an anonymous event ``{name, anonymous_id, type, id, timestamp,
  data}``; 400 with ``meta.errors`` when invalid.
- ``GET /api/v1/accounts/region``: ``{"url", "region", "environment_id"}`` of the workspace.
- An event whose ``id`` was seen before is ignored (deduplication), as documented.

A request the connector should never build (wrong path, method or content type, a body that
is not JSON) is a *violation*, answered 400 and recorded; the test fixture fails any test
with a violation it did not expect.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from headwater_customerio import CustomerIODestination

SITE_ID = "site-c4f0b2a1e9d8"
API_KEY = "cio-key-0123456789abcdef"
MAX_BATCH_BYTES = 500 * 1000
MAX_ITEM_BYTES = 32 * 1024
ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
PERSON_ACTIONS = {"identify", "event", "page", "screen", "merge"}
TRACK_URLS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}

Make = Callable[..., CustomerIODestination]
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


class CustomerIOAPI(ContractServer):
    """One Customer.io workspace's Track API."""

    def __init__(self, *, region: str = "us") -> None:
        super().__init__()
        self.credentials = (SITE_ID, API_KEY)
        self.region = region
        self.max_batch_bytes = MAX_BATCH_BYTES
        self.people: dict[str, dict[str, Any]] = {}
        self.activities: list[dict[str, Any]] = []
        self.anonymous: list[dict[str, Any]] = []
        self.duplicates = 0
        self._seen_ids: set[str] = set()

    def answer(self, request: Request) -> Reply:
        if basic_credentials(request.headers) != self.credentials:
            return Reply(401, {"meta": {"error": "Unauthorized request"}})
        route = (request.method, request.path)
        if route == ("GET", "/api/v1/accounts/region"):
            return Reply(
                200, {"url": TRACK_URLS[self.region], "region": self.region, "environment_id": 7}
            )
        if route not in (("POST", "/api/v2/batch"), ("POST", "/api/v1/events")):
            return self.violation(f"{request.method} {request.path}: not a Track API route")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.violation(f"{request.path} Content-Type must be application/json")
        if request.path == "/api/v2/batch" and len(request.body) >= self.max_batch_bytes:
            return Reply(413, {"errors": [{"reason": "too_large", "message": "batch >= 500kb"}]})
        try:
            body = request.json()
        except ValueError:
            return self.violation(f"{request.path} body is not JSON")
        if request.path == "/api/v1/events":
            return self._anonymous_event(body)
        return self._batch(body)

    def _batch(self, body: Any) -> Reply:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("batch"), list)
            or not body["batch"]
        ):
            return Reply(
                400, {"errors": [{"reason": "invalid", "field": "batch", "message": "required"}]}
            )
        errors = []
        for index, item in enumerate(body["batch"]):
            problem = self._check_item(item)
            if problem is None:
                problem = self._apply(item)
            if problem is not None:
                field_name, message = problem
                errors.append(
                    {
                        "batch_index": index,
                        "reason": "invalid",
                        "field": field_name,
                        "message": message,
                    }
                )
        if errors:
            return Reply(207, {"errors": errors})
        return Reply(200, {})

    def _check_item(self, item: Any) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "", "each item must be an object"
        if len(json.dumps(item).encode()) > MAX_ITEM_BYTES:
            return "", "each item must be 32kb or smaller"
        if item.get("type") != "person":
            return "type", "only person operations are expected here"
        action = item.get("action")
        if action not in PERSON_ACTIONS:
            return "action", f"unknown action {action!r}"
        if action == "merge":
            for side in ("primary", "secondary"):
                if _identifier(item.get(side)) is None:
                    return side, "must hold exactly one of id, email, cio_id"
            return None
        if _identifier(item.get("identifiers")) is None:
            return "identifiers", "must hold exactly one of id, email, cio_id"
        timestamp = item.get("timestamp")
        if timestamp is not None and (not isinstance(timestamp, int) or timestamp > 10**11):
            return "timestamp", "must be a Unix timestamp in seconds"
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            return "attributes", "must be an object"
        if action != "identify":
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                return "name", "is required"
            ulid = item.get("id")
            if ulid is not None and (not isinstance(ulid, str) or not ULID.fullmatch(ulid)):
                return "id", "must be a valid ULID"
        return None

    def _apply(self, item: dict[str, Any]) -> tuple[str, str] | None:
        action = item["action"]
        if action == "merge":
            primary = _identifier(item["primary"])
            secondary = _identifier(item["secondary"])
            if primary not in self.people:
                return "primary", "the primary person must already exist"
            merged = self.people.pop(secondary, {}) if secondary else {}
            self.people[primary] = {**merged, **self.people[primary]}
            return None
        person = _identifier(item["identifiers"])
        assert person is not None
        profile = self.people.setdefault(person, {})
        if action == "identify":
            profile.update(item.get("attributes", {}))
            return None
        self._record(
            {
                "person": person,
                "type": action,
                "name": item["name"],
                "id": item.get("id"),
                "timestamp": item.get("timestamp"),
                "data": item.get("attributes", {}),
            },
            self.activities,
        )
        return None

    def _anonymous_event(self, body: Any) -> Reply:
        errors = []
        if not isinstance(body, dict):
            return Reply(400, {"meta": {"errors": ["body must be an object"]}})
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append("name is required")
        if body.get("type", "event") not in ("event", "page", "screen"):
            errors.append("type must be event, page or screen")
        ulid = body.get("id")
        if ulid is not None and (not isinstance(ulid, str) or not ULID.fullmatch(ulid)):
            errors.append("id must be a valid ULID")
        if not isinstance(body.get("data", {}), dict):
            errors.append("data must be an object")
        if errors:
            return Reply(400, {"meta": {"errors": errors}})
        self._record(body, self.anonymous)
        return Reply(200, {})

    def _record(self, activity: dict[str, Any], into: list[dict[str, Any]]) -> None:
        ulid = activity.get("id")
        if ulid is not None and ulid in self._seen_ids:
            self.duplicates += 1
            return
        if ulid is not None:
            self._seen_ids.add(ulid)
        into.append(activity)


def _identifier(value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    [(kind, ident)] = value.items()
    if kind not in ("id", "email", "cio_id") or not isinstance(ident, str) or not ident:
        return None
    return ident if kind == "id" else f"{kind}:{ident}"
