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

Times are written as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, truncated to the millisecond.

Validation follows the contract's event model (the single source of the rules): the items
of a request are converted in one call into Structs derived from it (``_fastcheck``), and
an item that path does not accept is checked by the contract itself, which gives the reason.
What is stored is the client's own dict, with ids normalised to strings, so unknown fields
survive and no event is rebuilt field by field on the hot path.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import msgspec

from headwater_spec import EVENT_CLASSES, EVENT_TYPES, EventError, Rejection, event_from_dict

from ._fastcheck import accepts, as_id, convert_batch, fast_check
from ._times import MAX_MS, MILLIS_Z, MIN_MS, SECOND_PREFIXES, epoch_ms, format_ms, to_ms

_json = msgspec.json.Encoder()
_USER_IDS = ("userId", "anonymousId")
_ALL_IDS = ("userId", "anonymousId", "groupId", "previousId")
_MORE_IDS = frozenset({EVENT_CLASSES["group"], EVENT_CLASSES["alias"]})
MAX_ERRORS_SHOWN = 10


class Prepared(msgspec.Struct):
    """The outcome for one request: events to store, rejections, and errors to show."""

    events: list[dict[str, Any]]
    rejections: list[Rejection]
    errors: list[dict[str, Any]]

    def take_events(self) -> list[dict[str, Any]]:
        """The events, no longer held here (so they can be freed once the log has them)."""
        events, self.events = self.events, []
        return events


def _merge(item: dict[str, Any], key: str, batch_level: dict[str, Any]) -> None:
    """The item's own keys win. An item without the key gets the batch's dict itself, not a
    copy: nothing changes an event once it is prepared (the log encodes it as it is)."""
    own = item.get(key)
    if own is None:
        item[key] = batch_level
    elif isinstance(own, dict):
        item[key] = {**batch_level, **own}


class Preparer:
    """Prepares the items of one request; holds what the items share.

    Times are handled as integer milliseconds (``_times``): parsing and formatting datetimes
    per event was the largest cost of the hot path.
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
        self.received_iso = format_ms(self.received_ms)
        self.max_event_bytes = max_event_bytes
        self.check_sizes = body_bytes > max_event_bytes
        self.kind = kind
        self.batch_context = batch_context or None
        self.batch_integrations = batch_integrations or None
        self.batch_sent_at = batch_sent_at
        self._skews: dict[str, int] = {}
        self.batch_skew_ms = self._skew_ms(batch_sent_at)
        self._ids: list[str] = []

    def prepare(self, items: list[Any]) -> Prepared:
        out = Prepared([], [], [])
        if self.kind is not None:
            for item in items:
                if type(item) is dict:
                    item["type"] = self.kind
        converted = convert_batch(items)
        events_append = out.events.append
        check_sizes, batch_context, batch_integrations = (
            self.check_sizes,
            self.batch_context,
            self.batch_integrations,
        )
        received_iso, batch_sent_at, batch_skew = (
            self.received_iso,
            self.batch_sent_at,
            self.batch_skew_ms,
        )
        for index, item in enumerate(items):
            # One flat loop on purpose: it runs once per event and call overhead shows.
            if type(item) is not dict:
                self._reject(out, index, item, "an event must be a JSON object")
                continue
            if "writeKey" in item:
                del item["writeKey"]
            if check_sizes:
                size = len(_json.encode(item))
                if size > self.max_event_bytes:
                    reason = (
                        f"the event is {size} bytes, over the {self.max_event_bytes}-byte limit"
                    )
                    self._reject(out, index, item, reason)
                    continue
            event = None if converted is None else converted[index]
            if event is not None and accepts(event):
                if batch_context is not None:
                    _merge(item, "context", batch_context)
                if batch_integrations is not None:
                    _merge(item, "integrations", batch_integrations)
                message_id, sent_raw = event.messageId, event.sentAt
                original_raw = event.originalTimestamp or event.timestamp
            else:
                why = self._check_slowly(item)
                if why is not None:
                    self._reject(out, index, item, why)
                    continue
                get = item.get
                message_id, sent_raw = get("messageId"), get("sentAt")
                original_raw = get("originalTimestamp") or get("timestamp")

            # the server fields (see the module docstring)
            if not message_id:
                item["messageId"] = self._new_id()
            item["receivedAt"] = received_iso
            if sent_raw is None:
                if batch_sent_at is not None:
                    item["sentAt"] = batch_sent_at
                skew = batch_skew
            else:
                skew = self._skew_ms(sent_raw)
            events_append(item)
            if original_raw is None:
                item["timestamp"] = received_iso
                continue
            item["originalTimestamp"] = original_raw
            timestamp = epoch_ms(original_raw) if type(original_raw) is str else None
            if timestamp is None or not MIN_MS <= timestamp + skew <= MAX_MS:
                item["timestamp"] = received_iso
                continue
            timestamp += skew
            second, milli = divmod(timestamp, 1000)
            prefix = SECOND_PREFIXES.get(second)
            item["timestamp"] = format_ms(timestamp) if prefix is None else prefix + MILLIS_Z[milli]
        return out

    @staticmethod
    def _reject(out: Prepared, index: int, item: Any, reason: str) -> None:
        out.rejections.append(Rejection(reason=reason, raw=item))
        if len(out.errors) < MAX_ERRORS_SHOWN:
            out.errors.append({"index": index, "message": reason})

    def _check_slowly(self, item: dict[str, Any]) -> str | None:
        """For an item the fast path did not accept: the contract decides (the reason, or
        None when valid); batch-level fields are merged first and numeric ids become
        strings."""
        kind = item.get("type")
        cls = EVENT_CLASSES.get(kind) if type(kind) is str else None
        if cls is None:
            return f"`type` must be one of {', '.join(EVENT_TYPES)}; got {kind!r}"
        if self.batch_context is not None:
            _merge(item, "context", self.batch_context)
        if self.batch_integrations is not None:
            _merge(item, "integrations", self.batch_integrations)
        event = fast_check(item, cls.event_type)
        if event is None:
            try:
                event = event_from_dict(item)
            except EventError as exc:
                return str(exc)
        get = item.get
        for name in _USER_IDS if cls not in _MORE_IDS else _ALL_IDS:
            value = get(name)
            # only the type's own ids (a group's previousId is an unknown field, kept as is)
            if value is not None and type(value) is not str and hasattr(event, name):
                item[name] = as_id(getattr(event, name))
        return None

    def _new_id(self) -> str:
        """A random (version 4) UUID; the random bytes of a request are read at once."""
        if not self._ids:
            self._ids = uuid4_strings(16)
        return self._ids.pop()

    def _skew_ms(self, sent_at: Any) -> int:
        """``receivedAt - sentAt`` in ms, what corrects the client's clock; 0 when
        ``sentAt`` is not a time."""
        if type(sent_at) is not str:
            return 0
        skew = self._skews.get(sent_at)
        if skew is None:
            sent = epoch_ms(sent_at)
            skew = self._skews[sent_at] = 0 if sent is None else self.received_ms - sent
        return skew


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid4_strings(count: int) -> list[str]:
    """``count`` random UUIDs (version 4, RFC 9562 variant) as strings, from one read of
    ``os.urandom``: ``str(uuid.uuid4())`` costs ~3 us each, mostly that read."""
    hexed = os.urandom(16 * count).hex()
    out = []
    for start in range(0, 32 * count, 32):
        h = hexed[start : start + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out
