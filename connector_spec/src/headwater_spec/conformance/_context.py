"""An in-memory host context: what the daemon gives a connector, without the daemon.

It implements ``ConnectorContext``, ``SourceContext`` (pull sources) and ``PushContext``
(push sources) at once, and keeps what it was given in plain lists so the suite can check
it. Its "durable" state (events, checkpoint) lives in the object, so a restart is simply a
new connector instance handed the same context.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._events import Event, EventError, event_from_dict
from .._push import PushReceipt, Rejection


class SimulatedCrash(BaseException):
    """Raised by the context right after a store, as if the process died there.

    A ``BaseException`` so that a source's ``except Exception`` does not swallow it, the
    same way it cannot swallow a real crash.
    """


class MemoryContext:
    """Context for one connector instance under test.

    ``endpoint`` is where the suite's local server listens: a connector that takes its
    service address from ``context.endpoint`` (the framework's `endpoint` override) needs
    no other setting to be tested.
    """

    def __init__(
        self,
        *,
        instance_id: str = "conformance",
        region: str = "us",
        data_dir: Path | None = None,
        endpoint: str | None = None,
    ) -> None:
        self._instance_id = instance_id
        self._region = region
        self._data_dir = data_dir if data_dir is not None else Path.cwd()
        self.endpoint = endpoint
        self._logger = logging.getLogger(f"headwater.connector.{instance_id}")
        self.events: list[Event] = []
        self.rejected: list[Rejection] = []
        self.invalid: list[str] = []
        self.checkpoint: bytes | None = None
        self.checkpoints_saved = 0
        self.crash_after_stores: int | None = None
        self._stores = 0

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def region(self) -> str:
        return self._region

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    async def emit(self, events: Sequence[Event]) -> None:
        self._keep(events)
        self._stored()

    async def load_checkpoint(self) -> bytes | None:
        return self.checkpoint

    async def save_checkpoint(self, value: bytes) -> None:
        self._set_checkpoint(value)
        self._stored()

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        self._keep(events)
        self._set_checkpoint(value)
        self._stored()

    async def append(
        self, events: Sequence[dict[str, Any]], rejected: Sequence[Rejection] = ()
    ) -> PushReceipt:
        parsed: list[Event] = []
        for item in events:
            try:
                parsed.append(event_from_dict(item))
            except EventError as exc:
                self.invalid.append(f"{item!r}: {exc}")
        self.events.extend(parsed)
        self.rejected.extend(rejected)
        self._stored()
        return PushReceipt(accepted=len(parsed), rejected=len(rejected))

    def _keep(self, events: Sequence[Event]) -> None:
        if isinstance(events, (str, bytes, dict)):
            self.invalid.append(f"emit() got {type(events).__name__}; pass a list of events")
            return
        self.events.extend(events)

    def _set_checkpoint(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            self.invalid.append(
                f"a checkpoint must be bytes, got {type(value).__name__} "
                "(encode it, e.g. `str(cursor).encode()`)"
            )
        self.checkpoint = value
        self.checkpoints_saved += 1

    def _stored(self) -> None:
        self._stores += 1
        if self.crash_after_stores is not None and self._stores >= self.crash_after_stores:
            self.crash_after_stores = None
            raise SimulatedCrash(f"simulated crash after store #{self._stores}")
