"""The `file` destination: JSON Lines, one event per line.

Each batch is appended with one write and fsynced (unless ``fsync = false``) before its
events are reported delivered; a write that fails is a Retry for the whole batch, so the
router tries again later instead of dropping events. Relative paths are taken from the data
dir. Nothing de-duplicates: a batch retried after a crash between the write and the cursor
move appears twice, which readers can undo on ``messageId``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from headwater_spec import (
    DELIVERED,
    CheckResult,
    ConnectorContext,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
    Register,
    Retry,
    event_to_dict,
    hookimpl,
)

__all__ = ["FileDestination", "register_connectors"]


class FileDestination(Destination):
    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        path = Path(self.config["path"])
        self.path = path if path.is_absolute() else context.data_dir / path
        self.fsync = bool(self.config.get("fsync", True))
        self._encoder = msgspec.json.Encoder()

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        lines = self.lines(batch)
        try:
            await asyncio.to_thread(self._append, lines)
        except OSError as exc:
            return [Retry(reason=f"cannot write {self.path}: {exc.strerror}")] * len(batch)
        return [DELIVERED] * len(batch)

    def lines(self, batch: Sequence[Event]) -> bytes:
        """One JSON line per event, in one encoder call. An event without unknown fields is
        encoded straight from its Struct (the same JSON as ``event_to_dict`` gives, without
        building the dict first): measured, this was a fifth of the router's time per event."""
        return self._encoder.encode_lines([event_to_dict(ev) if ev.extra else ev for ev in batch])

    async def check(self) -> CheckResult:
        """Can the file be opened for appending (its folder created if missing)?"""
        try:
            await asyncio.to_thread(self._append, b"")
        except OSError as exc:
            return CheckResult(ok=False, message=f"cannot append to {self.path}: {exc.strerror}")
        return CheckResult(ok=True, message=f"{self.path} is writable")

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())


@hookimpl
def register_connectors(register: Register) -> None:
    register(FileDestination)
