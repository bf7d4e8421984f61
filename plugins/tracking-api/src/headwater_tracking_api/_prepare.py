"""Turn the items of a request into events for the log, or rejections with a reason.

Per item: the write key is removed (a credential is never stored), batch-level
``context``/``integrations`` are merged in (the item's own keys win), the event is
validated against the contract's event model, and the server fields are set:

- ``receivedAt``: when the request arrived;
- ``messageId``: a UUID when the client sent none;
- ``originalTimestamp``: the client's time of the event, as sent (its ``originalTimestamp``,
  else its ``timestamp``);
- ``timestamp``: that time corrected for the client's clock skew,
  ``receivedAt - (sentAt - originalTimestamp)``, as Segment does. Without ``sentAt`` it is
  ``originalTimestamp``; without either (or when they cannot be parsed), ``receivedAt``.

Validation uses ``msgspec.convert`` into the contract's Structs (the single source of the
rules) but stores the client's own dict, with ids normalised to strings, so unknown fields
survive and no event is rebuilt field by field on the hot path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from headwater_spec import EVENT_CLASSES, EVENT_TYPES, EventError, Rejection, event_from_dict

from ._fastcheck import as_id, fast_check

_json = msgspec.json.Encoder()
_USER_IDS = ("userId", "anonymousId")
_ALL_IDS = ("userId", "anonymousId", "groupId", "previousId")
_MORE_IDS = frozenset({EVENT_CLASSES["group"], EVENT_CLASSES["alias"]})
_fromisoformat = datetime.fromisoformat
MAX_ERRORS_SHOWN = 10


class Prepared(msgspec.Struct):
    """The outcome for one request: events to store, rejections, and errors to show."""

    events: list[dict[str, Any]]
    rejections: list[Rejection]
    errors: list[dict[str, Any]]


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, with a ``Z``: the form the SDKs send."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (naive means UTC); None when not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _merge(item: dict[str, Any], key: str, batch_level: dict[str, Any]) -> None:
    own = item.get(key)
    if own is None:
        item[key] = dict(batch_level)
    elif isinstance(own, dict):
        item[key] = {**batch_level, **own}


MIN_SECOND, MAX_SECOND = -62135596800, 253402300799
"""0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: the years ISO 8601 writes with 4 digits."""
MIN_MS, MAX_MS = MIN_SECOND * 1000, MAX_SECOND * 1000 + 999


_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (a double holds them exactly for every ISO year)."""
    return round(moment.timestamp() * 1000)


class Preparer:
    """Prepares the items of one request; holds what the items share.

    Times are handled as integer milliseconds and written back by a per-request cache of
    the ``YYYY-MM-DDTHH:MM:SS`` prefix per second: formatting a datetime per event was the
    largest cost of the hot path, and the events of one batch share few seconds.
    """

    def __init__(
        self,
        *,
        received_at: datetime,
        max_event_bytes: int,
        body_bytes: int,
        kind: str | None = None,
        batch_context: dict[str, Any] | None = None,
        batch_integrations: dict[str, Any] | None = None,
        batch_sent_at: Any = None,
    ) -> None:
        received_at = received_at.replace(microsecond=received_at.microsecond // 1000 * 1000)
        self.received_at = received_at
        self.received_ms = to_ms(received_at)
        self._prefixes: dict[int, str] = {}
        self.received_iso = self.format_ms(self.received_ms)
        self.max_event_bytes = max_event_bytes
        self.check_sizes = body_bytes > max_event_bytes
        self.kind = kind
        self.batch_context = batch_context or None
        self.batch_integrations = batch_integrations or None
        self.batch_sent_at = batch_sent_at
        self._sent_cache: dict[str, int | None] = {}
        self.batch_sent_ms = self._sent_ms(batch_sent_at)

    def format_ms(self, ms: int) -> str:
        """ISO 8601 UTC with milliseconds and ``Z``; None-safe callers check the range."""
        second, milli = divmod(ms, 1000)
        prefix = self._prefixes.get(second)
        if prefix is None:
            moment = datetime.fromtimestamp(second, UTC)
            prefix = self._prefixes[second] = moment.strftime("%Y-%m-%dT%H:%M:%S")
            if moment.year < 1000:  # strftime drops leading zeros of small years
                prefix = self._prefixes[second] = moment.isoformat()[:19]
        return prefix + _MILLIS[milli]

    def event_size(self, item: Any) -> int:
        """The JSON size of an item (only computed when the body could hold a big one)."""
        return len(_json.encode(item)) if self.check_sizes else 0

    def prepare(self, items: list[Any]) -> Prepared:
        out = Prepared([], [], [])
        events_append = out.events.append
        for index, item in enumerate(items):
            reason = self._prepare_one(item)
            if reason is None:
                events_append(item)
                continue
            out.rejections.append(Rejection(reason=reason, raw=item))
            if len(out.errors) < MAX_ERRORS_SHOWN:
                out.errors.append({"index": index, "message": reason})
        return out

    def _prepare_one(self, item: Any) -> str | None:
        """Prepare ``item`` in place; return why it is rejected, or None.

        One flat function on purpose: it runs once per event and call overhead shows."""
        if type(item) is not dict:
            return "an event must be a JSON object"
        item.pop("writeKey", None)
        if self.kind is not None:
            item["type"] = self.kind
        if self.check_sizes:
            size = self.event_size(item)
            if size > self.max_event_bytes:
                return f"the event is {size} bytes, over the {self.max_event_bytes}-byte limit"
        kind = item.get("type")
        cls = EVENT_CLASSES.get(kind) if type(kind) is str else None
        if cls is None:
            return f"`type` must be one of {', '.join(EVENT_TYPES)}; got {kind!r}"
        if self.batch_context is not None:
            _merge(item, "context", self.batch_context)
        if self.batch_integrations is not None:
            _merge(item, "integrations", self.batch_integrations)
        event = fast_check(item, kind)
        if event is None:
            try:
                event = event_from_dict(item)
            except EventError as exc:
                return str(exc)
        get = item.get
        for name in _USER_IDS if cls not in _MORE_IDS else _ALL_IDS:
            value = get(name)
            if value is not None and type(value) is not str:
                item[name] = as_id(getattr(event, name))

        # server fields
        if not get("messageId"):
            item["messageId"] = str(uuid.uuid4())
        received_iso = self.received_iso
        item["receivedAt"] = received_iso
        sent_raw = get("sentAt")
        if sent_raw is None:
            sent_raw = self.batch_sent_at
            if sent_raw is not None:
                item["sentAt"] = sent_raw
            sent = self.batch_sent_ms
        else:
            sent = self._sent_ms(sent_raw)
        original_raw = get("originalTimestamp") or get("timestamp")
        if original_raw is None:
            item["timestamp"] = received_iso
            return None
        item["originalTimestamp"] = original_raw
        try:
            original = _fromisoformat(original_raw)
        except (TypeError, ValueError):
            item["timestamp"] = received_iso
            return None
        if original.tzinfo is None:
            original = original.replace(tzinfo=UTC)
        timestamp = round(original.timestamp() * 1000)
        if sent is not None:
            timestamp = self.received_ms - (sent - timestamp)
        if not MIN_MS <= timestamp <= MAX_MS:
            item["timestamp"] = received_iso
            return None
        second, milli = divmod(timestamp, 1000)
        prefix = self._prefixes.get(second)
        item["timestamp"] = self.format_ms(timestamp) if prefix is None else prefix + _MILLIS[milli]
        return None

    def _sent_ms(self, value: Any) -> int | None:
        if type(value) is not str:
            return None
        cached = self._sent_cache.get(value, -1)
        if cached == -1:
            moment = parse_time(value)
            cached = self._sent_cache[value] = None if moment is None else to_ms(moment)
        return cached
