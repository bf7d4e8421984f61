"""The base types every connector derives from."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import msgspec

from ._events import Event
from ._outcomes import Outcome
from ._spec import ConnectorSpec


class CheckResult(msgspec.Struct, frozen=True):
    """The answer of ``check``: can the connector reach its service with this config?"""

    ok: bool
    message: str = ""


class ConnectorContext(Protocol):
    """What the host gives a connector instance."""

    @property
    def instance_id(self) -> str:
        """The id of this instance in the config (`[destinations.<id>]`)."""

    @property
    def region(self) -> str:
        """The instance's effective region."""

    @property
    def endpoint(self) -> str | None:
        """The instance's `endpoint` override (a proxy, a test server), or None.

        `endpoint` is a framework key, so it never reaches ``config``; a connector that
        talks to a service reads it here and falls back to ``spec.endpoint_for(region)``.
        Hosts written before this property existed lack it: read it with
        ``getattr(context, "endpoint", None)`` to accept them too.
        """

    @property
    def data_dir(self) -> Path:
        """The daemon's data dir; relative paths in a config are relative to it."""

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records carry the instance id; never log secrets."""


class SourceContext(ConnectorContext, Protocol):
    """What a pull source gets to emit events and keep its place."""

    async def emit(self, events: Sequence[Event]) -> None:
        """Append events to the log; returns once they are durable."""

    async def load_checkpoint(self) -> bytes | None:
        """The last checkpoint saved by this instance, if any."""

    async def save_checkpoint(self, value: bytes) -> None:
        """Persist the source's position (durable on return)."""

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        """Append events and move the checkpoint in one durable step."""


Route = tuple[str, str, Callable[..., Awaitable[Any]]]


class Connector:
    """Common to sources and destinations.

    A subclass sets ``spec`` (usually ``ConnectorSpec.from_package(__package__)``) and may
    override ``check``. ``config`` holds the instance's own keys, already validated against
    ``spec.config`` and with ``${ENV}`` references resolved.
    """

    spec: ClassVar[ConnectorSpec]

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        self.config = dict(config)
        self.context = context

    def __repr__(self) -> str:
        shown = self.spec.redact(self.config)
        return f"{type(self).__name__}({self.context.instance_id!r}, {shown!r})"

    async def check(self) -> CheckResult:
        """Test connectivity and credentials, like Airbyte's ``check``. Default: nothing to test."""
        return CheckResult(ok=True, message="no check implemented")

    async def close(self) -> None:
        """Release connections; called once when the instance is removed or the daemon stops."""


class Destination(Connector):
    """An `out` connector: receives batches of events and reports an outcome for each."""

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        """Deliver ``batch``; return one Outcome per event, in order. Never raise for
        service errors: map them to ``Retry`` or ``Rejected``."""
        raise NotImplementedError


class Source(Connector):
    """An `in` connector.

    A pull source implements ``run`` (the host calls it in a task and restarts it with
    backoff when it fails). A push source instead exposes HTTP routes through ``routes``.
    """

    async def run(self, ctx: SourceContext) -> None:
        """Pull events until cancelled."""
        return None

    def routes(self) -> Sequence[Route]:
        """(method, path, handler) triples served by the daemon's HTTP server.

        ``handler`` is ``async (HttpRequest) -> HttpResponse`` (see ``PushHandler``); a path
        may hold ``{name}`` segments, found in ``request.params``. A push source stores what
        it receives through its ``context``, a ``PushContext``.
        """
        return ()

    def max_body_bytes(self) -> int:
        """The largest request body, as sent (compressed or not), this source's routes
        accept; the daemon's server refuses bigger ones with 413 before reading them."""
        return 1 << 20
