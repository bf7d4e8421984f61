"""Test helpers for the PostgreSQL connectors: in-memory hosts for a source and a destination.

Imported by the tests as ``postgres_testkit`` (conftest.py puts this folder on sys.path).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from headwater_spec import Event


class HostContext:
    """The ConnectorContext a daemon would give an instance, minus the daemon."""

    def __init__(self, instance_id: str = "test", data_dir: Path | None = None) -> None:
        self.instance_id = instance_id
        self.region = "eu"
        self.endpoint: str | None = None
        self.data_dir = data_dir or Path(".")
        self.logger = logging.getLogger(f"headwater.test.{instance_id}")


class SourceCrash(Exception):
    """Stands for the process dying: raised by MemorySourceContext when told to."""


class MemorySourceContext(HostContext):
    """A SourceContext keeping the log and checkpoint in memory.

    ``emit_and_checkpoint`` appends events and moves the checkpoint together, as the real
    log does in one transaction; ``crash_after`` makes the n-th call raise *before* writing,
    as if the process died between two commits.
    """

    def __init__(self, instance_id: str = "test", *, crash_after: int | None = None) -> None:
        super().__init__(instance_id)
        self.events: list[Event] = []
        self.checkpoint: bytes | None = None
        self.commits = 0
        self.crash_after = crash_after

    def _maybe_crash(self) -> None:
        if self.crash_after is not None and self.commits >= self.crash_after:
            raise SourceCrash(f"crash after {self.commits} commits")

    async def emit(self, events: Sequence[Event]) -> None:
        self._maybe_crash()
        self.events.extend(events)
        self.commits += 1

    async def load_checkpoint(self) -> bytes | None:
        return self.checkpoint

    async def save_checkpoint(self, value: bytes) -> None:
        self._maybe_crash()
        self.checkpoint = value
        self.commits += 1

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        self._maybe_crash()
        self.events.extend(events)
        self.checkpoint = value
        self.commits += 1
