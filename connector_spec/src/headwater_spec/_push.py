"""The push-source HTTP contract: how a source that receives events over HTTP plugs in.

A push source (the tracking API, a webhook receiver) returns ``(method, path, handler)``
routes from ``Source.routes()``. The daemon owns the one HTTP server of the process and
calls ``await handler(request)`` with an ``HttpRequest``; the handler answers with an
``HttpResponse``. To store what it received, the handler uses the ``PushContext`` it was
constructed with (``self.context``): ``await context.append(events, rejected)`` returns only
once everything is durable, so a handler can answer 2xx right after it.

Why plain Structs and not a web framework's request type: a connector package must stay
testable without the daemon (call the handler with an ``HttpRequest`` and a fake context),
and the daemon's hot path must not pay for a framework it does not need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec

from ._connector import ConnectorContext

_json = msgspec.json.Encoder()


class HttpRequest(msgspec.Struct, kw_only=True):
    """One HTTP request, fully read.

    ``headers`` has lowercased names (a repeated header's values joined by ``", "``);
    ``body`` is the bytes as sent, still compressed when ``Content-Encoding`` says so;
    ``params`` holds the values of ``{name}`` segments of the matched route path.
    """

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = {}
    body: bytes = b""
    client: str = ""
    params: dict[str, str] = {}

    def header(self, name: str, default: str = "") -> str:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower(), default)


class HttpResponse(msgspec.Struct, kw_only=True):
    """What a handler answers.

    ``decline=True`` means "this request is not for this instance" (for example a write key
    another instance of the same connector owns): the daemon offers the request to the next
    instance serving the same route, and sends this response only when none accepts it.
    """

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = []
    decline: bool = False

    @classmethod
    def json(
        cls,
        value: Any,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (),
        *,
        decline: bool = False,
    ) -> HttpResponse:
        """A JSON response (``Content-Type: application/json``)."""
        return cls(
            status=status,
            body=_json.encode(value),
            headers=[("Content-Type", "application/json"), *headers],
            decline=decline,
        )

    @classmethod
    def error(
        cls,
        status: int,
        code: str,
        message: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        decline: bool = False,
    ) -> HttpResponse:
        """The error shape every Headwater endpoint uses: ``{"code", "message"}``."""
        return cls.json({"code": code, "message": message}, status, headers, decline=decline)


class Rejection(msgspec.Struct, frozen=True):
    """Something a client sent that failed validation: kept in the log's rejected table
    with the reason, so nothing a client sent is silently lost."""

    reason: str
    raw: Any


class PushReceipt(msgspec.Struct, frozen=True):
    """What an append stored: the events' sequence range (empty when none) and counts."""

    accepted: int
    rejected: int
    first_seq: int = 0
    last_seq: int = 0


class IngestUnavailableError(Exception):
    """The log cannot take the append now (disk full, shutting down). Nothing of it was
    stored; answer 503 with ``Retry-After: retry_after`` so the client tries again."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class PushContext(ConnectorContext, Protocol):
    """What the daemon gives a push source instance (as its ``context``)."""

    async def append(
        self, events: Sequence[dict[str, Any]], rejected: Sequence[Rejection] = ()
    ) -> PushReceipt:
        """Store ``events`` (JSON-ready dicts, already validated) and ``rejected`` items in
        one durable commit; return once both are on disk. Raise IngestUnavailableError
        when the log cannot accept; then nothing was stored."""
        ...


PushHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""The handler of a push-source route (and of any daemon route)."""
