"""Rows into events: which column is the user, the name, the time, the payload.

The messageId is a UUID 5 of (source instance id, key values, cursor value), so reading the
same version of a row twice yields the same id (downstream de-duplication works), while a
row that changed (a new ``updated_at``) is a new event with a new id.

A row that cannot become an event (no user id and no anonymous id, no event name) is skipped
and counted; the pass logs how many and the key of the first, never their values.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from headwater_spec import Event, Identify, Track

from ._connection import PostgresError
from ._source_config import SourceConfig
from ._values import iso_utc, json_value, stable_text

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://headwater.dev/connectors/postgres-source")
LIBRARY = {"name": "headwater-postgres", "version": "0.1.0"}
_SEP = "\x1f"
_NS_BYTES = NAMESPACE.bytes


def message_id(instance_id: str, keys: Sequence[str], cursor: str) -> str:
    """The deterministic messageId of one version of one row: RFC 4122 UUID 5 of
    ``instance_id␟key…␟cursor`` in the connector's namespace (what ``uuid.uuid5`` gives,
    computed without building UUID objects, as it runs once per row)."""
    name = _SEP.join((instance_id, *keys, cursor))
    digest = bytearray(hashlib.sha1(_NS_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RowMapper:
    """Turns rows of one result shape into events; built once per pass from the columns."""

    def __init__(self, config: SourceConfig, columns: Sequence[str], *, instance_id: str) -> None:
        self.config = config
        self.instance_id = instance_id
        index = {name: i for i, name in enumerate(columns)}
        missing = [(c, key) for c, key in config.mapped_columns().items() if c not in index]
        if missing:
            column, key = missing[0]
            raise PostgresError(
                f"column {column!r} named in `{key}` is not among the columns the "
                f"{config.query_key} returns ({', '.join(columns)}); fix `{key}` or "
                f"`{config.query_key}`"
            )
        self.cursor_at = index[config.cursor_column]
        self.key_at = [index[k] for k in config.tie_breakers]
        self.user_at = index.get(config.user_id_column or "")
        self.anon_at = index.get(config.anonymous_id_column or "")
        self.time_at = index.get(config.timestamp_column or "", self.cursor_at)
        self.event_at = index.get(config.event_column or "")
        used = {
            c
            for c in (
                config.user_id_column,
                config.anonymous_id_column,
                config.timestamp_column,
                config.event_column,
            )
            if c
        }
        payload = config.payload_columns
        if payload is None:
            payload = tuple(c for c in columns if c not in used)
        self.payload = [(name, index[name]) for name in payload]
        self.track = config.event_type == "track"
        self.skipped = 0
        self.first_skipped: str | None = None

    def position(self, row: Sequence[Any]) -> tuple[str, tuple[str, ...]]:
        """(cursor text, tie-breaker texts) of a row, as checkpointed."""
        return stable_text(row[self.cursor_at]), tuple(stable_text(row[i]) for i in self.key_at)

    def events(self, rows: Sequence[Sequence[Any]]) -> list[Event]:
        """The events of ``rows``; rows that cannot be events are counted in ``skipped``."""
        out: list[Event] = []
        for row in rows:
            event = self._event(row)
            if event is not None:
                out.append(event)
        return out

    def _event(self, row: Sequence[Any]) -> Event | None:
        cursor = stable_text(row[self.cursor_at])
        keys = [stable_text(row[i]) for i in self.key_at]
        user = row[self.user_at] if self.user_at is not None else None
        anon = row[self.anon_at] if self.anon_at is not None else None
        name = ""
        if self.track:
            raw = row[self.event_at] if self.event_at is not None else self.config.event
            name = str(raw) if raw is not None else ""
        if (user is None and anon is None) or (self.track and not name):
            self._skip(keys or [cursor])
            return None
        when = row[self.time_at]
        timestamp = iso_utc(when) if isinstance(when, datetime) else None
        payload = {column: json_value(row[i]) for column, i in self.payload}
        mid = message_id(self.instance_id, keys, cursor)
        user_id = None if user is None else str(user)
        anon_id = None if anon is None else str(anon)
        context = {"library": LIBRARY}
        try:
            if self.track:
                return Track(
                    event=name,
                    properties=payload,
                    messageId=mid,
                    timestamp=timestamp,
                    userId=user_id,
                    anonymousId=anon_id,
                    context=context,
                )
            return Identify(
                traits=payload,
                messageId=mid,
                timestamp=timestamp,
                userId=user_id,
                anonymousId=anon_id,
                context=context,
            )
        except ValueError:
            self._skip(keys or [cursor])
            return None

    def _skip(self, keys: Sequence[str]) -> None:
        self.skipped += 1
        if self.first_skipped is None:
            self.first_skipped = ", ".join(keys)
