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
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from headwater_spec import Event, Identify, Track

from ._connection import PostgresError
from ._source_config import SourceConfig
from ._values import (
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    iso_utc,
    json_converter,
    json_value,
    stable_and_iso,
    stable_converter,
    stable_text_is_equality,
    str_converter,
)

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://headwater.dev/connectors/postgres-source")
LIBRARY = {"name": "headwater-postgres", "version": "0.1.0"}
_SEP = "\x1f"
_NS_BYTES = NAMESPACE.bytes
_NOTHING = object()
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def message_id(instance_id: str, keys: Sequence[str], cursor: str) -> str:
    """The deterministic messageId of one version of one row: RFC 4122 UUID 5 of
    ``instance_id␟key…␟cursor`` in the connector's namespace (what ``uuid.uuid5`` gives)."""
    return _uuid5_text(_NS_BYTES + _SEP.join((instance_id, *keys, cursor)).encode())


def _uuid5_text(data: bytes) -> str:
    """str(UUID 5) of namespace+name bytes ``data``, from the hex digest alone: uuid.UUID
    objects cost several times the hashing, and this runs once per row."""
    x = hashlib.sha1(data).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


class RowMapper:
    """Turns rows of one result shape into events; built once per pass from the columns.

    ``types`` (the columns' type OIDs) pick each column's conversion once per pass; with
    ``as_text`` the ``TEXT_LOADED`` types come as the server's text (see ``_values``).
    """

    def __init__(
        self,
        config: SourceConfig,
        columns: Sequence[str],
        *,
        instance_id: str,
        types: Sequence[int] | None = None,
        as_text: bool = False,
    ) -> None:
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
        oids = list(types) if types is not None else [0] * len(columns)
        self.cursor_at = index[config.cursor_column]
        self.key_at = [index[k] for k in config.tie_breakers]
        self.user_at = index.get(config.user_id_column or "")
        self.anon_at = index.get(config.anonymous_id_column or "")
        self.time_at = index.get(config.timestamp_column or "", self.cursor_at)
        self.event_at = index.get(config.event_column or "")
        self._stable = [stable_converter(oid, as_text=as_text) for oid in oids]
        self._cursor_memo = stable_text_is_equality(oids[self.cursor_at], as_text=as_text)
        self._cursor_and_time = (
            stable_and_iso(oids[self.cursor_at], as_text=as_text)
            if self.time_at == self.cursor_at
            else None
        )
        self._user_str = str_converter(oids[self.user_at or 0], as_text=as_text)
        self._anon_str = str_converter(oids[self.anon_at or 0], as_text=as_text)
        self._event_str = str_converter(oids[self.event_at or 0], as_text=as_text)
        time_oid = oids[self.time_at]
        self._time_is_timestamp = time_oid in (TIMESTAMPTZ_OID, TIMESTAMP_OID)
        self._time_iso = json_converter(time_oid, as_text=as_text) or iso_utc
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
        # Columns whose JSON differs from the loaded value: (name, index, converter). The
        # timestamp column's JSON is the event's timestamp, converted once per row.
        self._convert: list[tuple[str, int, Callable[[Any], Any]]] = []
        self._time_in_payload: str | None = None
        for name, i in self.payload:
            if i == self.time_at and self._time_is_timestamp:
                self._time_in_payload = name
                continue
            convert = json_converter(oids[i], as_text=as_text) if types is not None else json_value
            if convert is not None:
                self._convert.append((name, i, convert))
        self._prefix = _NS_BYTES + (instance_id + _SEP).encode()
        self.track = config.event_type == "track"
        self.skipped = 0
        self.first_skipped: str | None = None

    def _text(self, row: Sequence[Any], i: int) -> str:
        value = row[i]
        return "None" if value is None else self._stable[i](value)

    def position(self, row: Sequence[Any]) -> tuple[str, tuple[str, ...]]:
        """(cursor text, tie-breaker texts) of a row, as checkpointed."""
        return self._text(row, self.cursor_at), tuple(self._text(row, i) for i in self.key_at)

    def events(self, rows: Sequence[Sequence[Any]]) -> list[Event]:
        """The events of ``rows``; rows that cannot be events are counted in ``skipped``.

        This loop is most of the source's CPU time, so what does not change per row is
        looked up before it, and the cursor's text and the timestamp are converted once per
        distinct value (rows updated in one transaction share their ``updated_at``).
        """
        out: list[Event] = []
        append = out.append
        cursor_at, key_at, time_at = self.cursor_at, self.key_at, self.time_at
        cursor_stable = self._stable[cursor_at]
        single_key = key_at[0] if len(key_at) == 1 else None
        key_stable = self._stable[single_key] if single_key is not None else str
        text = self._text
        user_at, anon_at, event_at = self.user_at, self.anon_at, self.event_at
        track, constant_name = self.track, self.config.event
        time_is_timestamp, time_iso = self._time_is_timestamp, self._time_iso
        payload_at, convert, time_in_payload = self.payload, self._convert, self._time_in_payload
        prefix, uuid5_text = self._prefix, _uuid5_text
        user_str, anon_str, event_str = self._user_str, self._anon_str, self._event_str
        cursor_memo, last_cursor = self._cursor_memo, _NOTHING
        last_when: Any = _NOTHING
        both = self._cursor_and_time
        cursor = ""
        timestamp: str | None = None
        cursor_time: str | None = None
        for row in rows:
            value = row[cursor_at]
            if value != last_cursor or value is None or not cursor_memo:
                last_cursor = value
                if value is None:
                    cursor, cursor_time = "None", None
                elif both is not None:
                    cursor, cursor_time = both(value)
                else:
                    cursor = cursor_stable(value)
            if single_key is not None:
                key = row[single_key]
                name_text = f"{'None' if key is None else key_stable(key)}{_SEP}{cursor}"
            elif key_at:
                name_text = _SEP.join([*(text(row, i) for i in key_at), cursor])
            else:
                name_text = cursor
            user = row[user_at] if user_at is not None else None
            anon = row[anon_at] if anon_at is not None else None
            name = ""
            if track:
                if event_at is None:
                    name = constant_name or ""
                else:
                    raw = row[event_at]
                    name = event_str(raw) if raw is not None else ""
            if (user is None and anon is None) or (track and not name):
                self._skip(row)
                continue
            if both is not None:
                timestamp = cursor_time
            elif (when := row[time_at]) != last_when or when is None:
                last_when = when
                if when is None:
                    timestamp = None
                elif time_is_timestamp:
                    timestamp = time_iso(when)
                else:
                    timestamp = iso_utc(when) if isinstance(when, datetime) else None
            payload = {column: row[i] for column, i in payload_at}
            for column, i, to_json in convert:
                item = row[i]
                if item is not None:
                    payload[column] = to_json(item)
            if time_in_payload is not None:
                payload[time_in_payload] = timestamp
            try:
                if track:
                    event: Event = Track(
                        event=name,
                        properties=payload,
                        messageId=uuid5_text(prefix + name_text.encode()),
                        timestamp=timestamp,
                        userId=None if user is None else user_str(user),
                        anonymousId=None if anon is None else anon_str(anon),
                        context={"library": LIBRARY},
                    )
                else:
                    event = Identify(
                        traits=payload,
                        messageId=uuid5_text(prefix + name_text.encode()),
                        timestamp=timestamp,
                        userId=None if user is None else user_str(user),
                        anonymousId=None if anon is None else anon_str(anon),
                        context={"library": LIBRARY},
                    )
            except ValueError:
                self._skip(row)
                continue
            append(event)
        return out

    def _skip(self, row: Sequence[Any]) -> None:
        self.skipped += 1
        if self.first_skipped is None:
            cursor, keys = self.position(row)
            self.first_skipped = ", ".join(keys or [cursor])
