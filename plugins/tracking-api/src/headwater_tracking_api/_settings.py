"""The instance config of a `tracking-api` source, as a Struct."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

MAX_EVENT_BYTES = 32 * 1024
"""Segment's per-event limit (32 KB)."""
MAX_REQUEST_BYTES = 500 * 1024
"""Segment's per-request limit (500 KB), counted after decompression."""
MAX_BATCH_EVENTS = 2500


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    write_keys: tuple[str, ...]
    cors_origins: tuple[str, ...] = ("*",)
    max_event_bytes: int = MAX_EVENT_BYTES
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_batch_events: int = MAX_BATCH_EVENTS

    def __repr__(self) -> str:
        return (
            f"Settings(write_keys=<{len(self.write_keys)} hidden>, "
            f"cors_origins={self.cors_origins!r}, max_event_bytes={self.max_event_bytes}, "
            f"max_request_bytes={self.max_request_bytes}, "
            f"max_batch_events={self.max_batch_events})"
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """The host validated ``config`` against spec.json already; this only types it."""
        return msgspec.convert(dict(config), cls)
