"""The event model: Segment-compatible events as msgspec Structs, tagged on ``type``.

Fields the model does not know are kept in ``extra`` and written back on encode, so an event
survives a decode/encode round trip unchanged. Validation of the rules the Segment spec
states in prose (who the event is about, what it is called) happens in ``__post_init__``,
so a bad event fails to decode with a message naming the field.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[EventType, ...] = ("track", "identify", "page", "screen", "group", "alias")

_Id = str | int | float | None


def _as_id(value: _Id) -> str | None:
    """SDKs send ids as numbers sometimes; Segment treats them as strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class BaseEvent(msgspec.Struct, kw_only=True, tag_field="type", omit_defaults=True):
    """Fields common to every event type (Segment's "common fields")."""

    messageId: str | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    receivedAt: str | None = None
    userId: _Id = None
    anonymousId: _Id = None
    context: dict[str, Any] = {}
    integrations: dict[str, Any] = {}
    version: int | str | None = None
    channel: str | None = None
    extra: dict[str, Any] = {}

    event_type: ClassVar[EventType]

    def __post_init__(self) -> None:
        # Runs for every event decoded (the router decodes each stored event once per
        # destination): ids that are already strings, the usual case, cost no call.
        user_id = self.userId
        if user_id is not None and type(user_id) is not str:
            self.userId = _as_id(user_id)
        anonymous_id = self.anonymousId
        if anonymous_id is not None and type(anonymous_id) is not str:
            self.anonymousId = _as_id(anonymous_id)
        self._check_identity()

    def _check_identity(self) -> None:
        if not self.userId and not self.anonymousId:
            raise ValueError("`userId` or `anonymousId` is required")

    @property
    def user_key(self) -> str:
        """The key per-user ordering is kept on: userId, else anonymousId."""
        return str(self.userId or self.anonymousId or "")


class Track(BaseEvent, tag="track"):
    event: str
    properties: dict[str, Any] = {}
    event_type: ClassVar[EventType] = "track"

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        if not self.event:
            raise ValueError("`event` must be a non-empty string")


class Identify(BaseEvent, tag="identify"):
    traits: dict[str, Any] = {}
    event_type: ClassVar[EventType] = "identify"


class Page(BaseEvent, tag="page"):
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = {}
    event_type: ClassVar[EventType] = "page"


class Screen(BaseEvent, tag="screen"):
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = {}
    event_type: ClassVar[EventType] = "screen"


class Group(BaseEvent, tag="group"):
    groupId: _Id = None
    traits: dict[str, Any] = {}
    event_type: ClassVar[EventType] = "group"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.groupId = _as_id(self.groupId)
        if not self.groupId:
            raise ValueError("`groupId` is required")


class Alias(BaseEvent, tag="alias"):
    previousId: _Id = None
    event_type: ClassVar[EventType] = "alias"

    def _check_identity(self) -> None:
        self.previousId = _as_id(self.previousId)
        if not self.userId:
            raise ValueError("`userId` is required")
        if not self.previousId:
            raise ValueError("`previousId` is required")


Event = Track | Identify | Page | Screen | Group | Alias
EVENT_CLASSES: dict[str, type[BaseEvent]] = {
    cls.event_type: cls for cls in (Track, Identify, Page, Screen, Group, Alias)
}
_KNOWN_FIELDS: dict[type[BaseEvent], frozenset[str]] = {
    cls: frozenset(cls.__struct_fields__) - {"extra"} | {"type"} for cls in EVENT_CLASSES.values()
}


class EventError(ValueError):
    """An event that does not satisfy the model; the message names the field."""


def event_from_dict(obj: Any) -> Event:
    """Validate one decoded JSON/msgpack object into an Event, keeping unknown fields."""
    if not isinstance(obj, dict):
        raise EventError(f"an event must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    cls = EVENT_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        allowed = ", ".join(EVENT_TYPES)
        raise EventError(f"`type` must be one of {allowed}; got {kind!r}")
    # A client's own top-level `extra` key is an unknown field like any other; it must not
    # be mistaken for the Struct's `extra` holder (and must not fail when it is no object).
    fields = {k: v for k, v in obj.items() if k != "extra"} if "extra" in obj else obj
    try:
        ev = msgspec.convert(fields, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise EventError(_friendly(str(exc))) from None
    known = _KNOWN_FIELDS[cls]
    extra = {k: v for k, v in obj.items() if k not in known}
    if extra:
        ev.extra = extra
    return ev  # type: ignore[return-value]


def decode_event(data: bytes | str) -> Event:
    """Decode one JSON event."""
    try:
        obj = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None
    return event_from_dict(obj)


def event_to_dict(event: BaseEvent) -> dict[str, Any]:
    """The event as plain JSON-ready data, unknown fields restored."""
    out: dict[str, Any] = msgspec.to_builtins(event)
    extra = out.pop("extra", None)
    if extra:
        for key, value in extra.items():
            out.setdefault(key, value)
    return out


def encode_event(event: BaseEvent) -> bytes:
    """Encode one event as JSON, unknown fields included."""
    return msgspec.json.encode(event_to_dict(event))


def _friendly(message: str) -> str:
    """msgspec says "... - at `$.userId`"; turn the path into the field name users know."""
    text, sep, path = message.rpartition(" - at `")
    if not sep:
        return message
    field = path.rstrip("`").removeprefix("$.").removeprefix("$")
    return f"`{field}`: {text}" if field else text
