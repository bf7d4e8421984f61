"""The `postgres-source` instance config as a Struct, once validated by spec_source.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

EventKind = Literal["identify", "track"]


class SourceConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the rows come from, how they are paged, and what each becomes."""

    query: str | None = None
    table: str | None = None
    columns: tuple[str, ...] = ()
    cursor_column: str
    key_columns: tuple[str, ...]
    poll_interval: float = 60.0
    fetch_size: int = 1000
    event_type: EventKind
    user_id_column: str | None = None
    anonymous_id_column: str | None = None
    timestamp_column: str | None = None
    trait_columns: tuple[str, ...] | None = None
    event: str | None = None
    event_column: str | None = None
    property_columns: tuple[str, ...] | None = None

    @property
    def tie_breakers(self) -> tuple[str, ...]:
        """The key columns that order rows sharing a cursor value (the cursor itself dropped)."""
        return tuple(k for k in self.key_columns if k != self.cursor_column)

    @property
    def payload_columns(self) -> tuple[str, ...] | None:
        """The configured trait/property columns, or None for "every unmapped column"."""
        return self.trait_columns if self.event_type == "identify" else self.property_columns

    def mapped_columns(self) -> dict[str, str]:
        """Columns the mapping names, each with the config key that names it."""
        named: dict[str, str] = {self.cursor_column: "cursor_column"}
        for key in self.key_columns:
            named.setdefault(key, "key_columns")
        for field in ("user_id_column", "anonymous_id_column", "timestamp_column", "event_column"):
            value = getattr(self, field)
            if value:
                named.setdefault(value, field)
        payload_key = "trait_columns" if self.event_type == "identify" else "property_columns"
        for column in self.payload_columns or ():
            named.setdefault(column, payload_key)
        return named

    @property
    def query_key(self) -> str:
        """The config key that says what is read, for error messages."""
        return "query" if self.query is not None else "table"


_SOURCE_KEYS = set(SourceConfig.__struct_fields__)


def source_config(config: Mapping[str, Any]) -> SourceConfig:
    own = {k: v for k, v in config.items() if k in _SOURCE_KEYS}
    return msgspec.convert(own, SourceConfig)
