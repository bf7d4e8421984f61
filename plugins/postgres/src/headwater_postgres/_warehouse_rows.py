"""Events as warehouse rows: which table each goes to and its column values.

Tables are named as in Segment's warehouses: ``tracks``, ``identifies``, ``pages``,
``screens``, ``groups``, ``aliases``, plus, for tracks whose event has its own table, the
snake_cased event name (``Order Completed`` -> ``order_completed``; a name that would clash
with one of the six is prefixed ``track_``). A track with its own table puts its properties
there only; ``tracks`` keeps one row per track with the common and context columns.

Flattened (the default): properties and traits become top-level columns and context becomes
``context_*`` columns, nested keys joined with ``_``. A property whose column would clash with
a fixed column (``user_id``, ``timestamp``, ...), or start with ``context_`` or ``_``, is
prefixed ``property_`` (``trait_`` for traits). With ``flatten = false`` they stay JSONB in
``properties``/``traits``/``context`` instead.

An event without a messageId gets ``hw-`` + a UUID 5 of its JSON, so a replay of it still
finds the first copy.
"""

from __future__ import annotations

import uuid
from typing import Any

from headwater_spec import Alias, Event, Group, Page, Screen, Track, encode_event

from . import _column_types as t
from ._naming import identifier, snake, table_for_event

EVENT_TABLES = {
    "track": "tracks",
    "identify": "identifies",
    "page": "pages",
    "screen": "screens",
    "group": "groups",
    "alias": "aliases",
}

COMMON_COLUMNS: dict[str, str] = {
    "message_id": t.TEXT,
    "user_id": t.TEXT,
    "anonymous_id": t.TEXT,
    "timestamp": t.TIMESTAMPTZ,
    "original_timestamp": t.TIMESTAMPTZ,
    "sent_at": t.TIMESTAMPTZ,
    "received_at": t.TIMESTAMPTZ,
    "loaded_at": t.TIMESTAMPTZ,
    "_conflicts": t.JSONB,
}
KIND_COLUMNS: dict[str, dict[str, str]] = {
    "track": {"event": t.TEXT},
    "identify": {},
    "page": {"name": t.TEXT, "category": t.TEXT},
    "screen": {"name": t.TEXT, "category": t.TEXT},
    "group": {"group_id": t.TEXT},
    "alias": {"previous_id": t.TEXT},
}
PAYLOAD_COLUMN = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}
CLASH_PREFIX = {
    "track": "property",
    "page": "property",
    "screen": "property",
    "identify": "trait",
    "group": "trait",
}
_RESERVED = frozenset(COMMON_COLUMNS) | {c for cols in KIND_COLUMNS.values() for c in cols}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://headwater.dev/connectors/postgres-warehouse")

Row = dict[str, Any]


def fixed_columns(kind: str, *, flatten: bool) -> dict[str, str]:
    """The columns a table of this event type is created with."""
    columns = {**COMMON_COLUMNS, **KIND_COLUMNS[kind]}
    if not flatten:
        columns["context"] = t.JSONB
        if kind in PAYLOAD_COLUMN:
            columns[PAYLOAD_COLUMN[kind]] = t.JSONB
    return columns


class RowBuilder:
    """Builds the rows of events for one destination's settings."""

    def __init__(self, *, flatten: bool, track_tables: bool | list[str]) -> None:
        self.flatten = flatten
        self.all_track_tables = track_tables is True
        self.track_tables = (
            frozenset(track_tables) if isinstance(track_tables, list) else frozenset()
        )

    def event_table(self, event: Track) -> str | None:
        """The per-event table of a track, when it gets one."""
        if not (self.all_track_tables or event.event in self.track_tables):
            return None
        name = table_for_event(event.event)
        if name in EVENT_TABLES.values():
            name = identifier("track_" + name)
        return name

    def rows(self, event: Event) -> list[tuple[str, str, Row]]:
        """(table, event type, values) for each row the event writes."""
        kind = event.event_type
        row = self._common(event)
        payload: dict[str, Any] = getattr(event, PAYLOAD_COLUMN.get(kind, "_"), None) or {}
        if isinstance(event, Track):
            own = self.event_table(event)
            if own is not None:
                full = dict(row)
                self._payload(full, payload, "property")
                return [("tracks", kind, row), (own, kind, full)]
        if kind in PAYLOAD_COLUMN:
            self._payload(row, payload, CLASH_PREFIX[kind])
        return [(EVENT_TABLES[kind], kind, row)]

    def _common(self, event: Event) -> Row:
        row: Row = {
            "message_id": event.messageId or derived_message_id(event),
            "user_id": event.userId,
            "anonymous_id": event.anonymousId,
            "timestamp": event.timestamp,
            "original_timestamp": event.originalTimestamp,
            "sent_at": event.sentAt,
            "received_at": event.receivedAt,
        }
        if isinstance(event, Track):
            row["event"] = event.event
        elif isinstance(event, Page | Screen):
            row["name"] = event.name
            row["category"] = event.category
        elif isinstance(event, Group):
            row["group_id"] = event.groupId
        elif isinstance(event, Alias):
            row["previous_id"] = event.previousId
        if self.flatten:
            if event.context:
                _flatten_into(row, "context", event.context, None)
        elif event.context:
            row["context"] = event.context
        return row

    def _payload(self, row: Row, payload: dict[str, Any], prefix: str) -> None:
        if not payload:
            return
        if self.flatten:
            _flatten_into(row, "", payload, prefix)
        else:
            row["traits" if prefix == "trait" else "properties"] = payload


_names: dict[tuple[str, str, str | None], str] = {}
_NAMES_LIMIT = 100_000


def _column(prefix: str, key: str, clash_prefix: str | None, leaf: bool) -> str:
    """The column of ``key`` under ``prefix`` (cached: the same keys come in every event)."""
    cache_key = (prefix, key, clash_prefix if leaf else "\x00")
    found = _names.get(cache_key)
    if found is not None:
        return found
    part = snake(key)
    name = f"{prefix}_{part}" if prefix else part
    if leaf:
        if clash_prefix is not None and (
            name in _RESERVED or name.startswith(("context_", "_")) or not name
        ):
            name = f"{clash_prefix}_{name}" if name else clash_prefix
        name = identifier(name)
    if len(_names) < _NAMES_LIMIT:
        _names[cache_key] = name
    return name


_shapes: dict[tuple[str, str | None, tuple[str, ...]], tuple[list[str], list[str]]] = {}


def _flatten_into(row: Row, prefix: str, obj: dict[str, Any], clash_prefix: str | None) -> None:
    """Flattened ``obj`` into ``row``. Objects of one shape (the same keys in the same order,
    the common case) share their column names, and the prefixes of their keys' nested
    objects, so most events cost one lookup per object."""
    keys = tuple(obj)
    shape = (prefix, clash_prefix, keys)
    found = _shapes.get(shape)
    if found is None:
        found = (
            [_column(prefix, key, clash_prefix, True) for key in keys],
            [_column(prefix, key, clash_prefix, False) for key in keys],
        )
        if len(_shapes) < _NAMES_LIMIT:
            _shapes[shape] = found
    names, prefixes = found
    # One pass assigning item by item: measured faster than row.update(zip(...)), which
    # takes the slow path of dict.update for an iterable of pairs.
    for name, nested, value in zip(names, prefixes, obj.values(), strict=False):
        if type(value) is dict:
            if value:
                _flatten_into(row, nested, value, clash_prefix)
        else:
            row[name] = value


def derived_message_id(event: Event) -> str:
    return "hw-" + str(uuid.uuid5(_NAMESPACE, encode_event(event).decode()))
