"""Segment events as Amplitude HTTP V2 events.

The mapping follows what users of Segment's Amplitude destination expect:

- track -> ``event_type`` = ``event``, ``event_properties`` = ``properties``; ``revenue``,
  ``price``, ``quantity``, ``productId`` and ``revenueType`` properties also go to the
  top-level revenue fields Amplitude reads them from;
- page / screen -> "Viewed <name> Page" / "Viewed <name> Screen" ("Loaded a Page" /
  "Loaded a Screen" without a name), with ``properties`` plus ``name`` and ``category``;
- identify -> the ``$identify`` event with ``user_properties: {"$set": traits}`` (what
  Amplitude's own server SDKs send through HTTP V2 for identify).

Every event gets ``user_id`` (userId), ``device_id`` (anonymousId), ``time`` in
milliseconds when the event has a parseable time (else Amplitude uses the upload time),
``insert_id`` (the messageId; a hash of the event when it has none) and device fields from
``context``. Amplitude ignores a second event with the same insert_id for 7 days, so a
retry never double counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from headwater_spec import (
    Event,
    Identify,
    Page,
    Rejected,
    Screen,
    Track,
    event_time_ms,
    event_to_dict,
)

LIBRARY = "headwater/0.1.0"

_REVENUE_FIELDS = ("revenue", "price", "quantity", "productId", "revenueType")

_CONTEXT_FIELDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ip",), "ip"),
    (("os", "name"), "os_name"),
    (("os", "version"), "os_version"),
    (("device", "manufacturer"), "device_manufacturer"),
    (("device", "model"), "device_model"),
    (("device", "brand"), "device_brand"),
    (("network", "carrier"), "carrier"),
    (("app", "version"), "app_version"),
    (("locale",), "language"),
    (("location", "country"), "country"),
    (("location", "city"), "city"),
    (("location", "region"), "region"),
    (("location", "latitude"), "location_lat"),
    (("location", "longitude"), "location_lng"),
)
"""Segment ``context`` fields that have a top-level Amplitude event field."""


class Plan(msgspec.Struct):
    """What one batch becomes: HTTP V2 events tagged with their index, and refusals."""

    events: list[tuple[int, dict[str, Any]]]
    rejected: dict[int, Rejected]


def plan_batch(batch: Sequence[Event]) -> Plan:
    plan = Plan(events=[], rejected={})
    for index, event in enumerate(batch):
        mapped = amplitude_event(event)
        if isinstance(mapped, Rejected):
            plan.rejected[index] = mapped
        else:
            plan.events.append((index, mapped))
    return plan


def amplitude_event(event: Event) -> dict[str, Any] | Rejected:
    """One HTTP V2 event, or the reason this destination does not send it."""
    if isinstance(event, Track):
        out = _common(event, event.event)
        out["event_properties"] = dict(event.properties)
        for name in _REVENUE_FIELDS:
            value = event.properties.get(name)
            if value is not None and not isinstance(value, dict | list):
                out[name] = value
        return out
    if isinstance(event, Page | Screen):
        kind = "Page" if isinstance(event, Page) else "Screen"
        out = _common(event, f"Viewed {event.name} {kind}" if event.name else f"Loaded a {kind}")
        props = dict(event.properties)
        if event.name:
            props.setdefault("name", event.name)
        if event.category:
            props.setdefault("category", event.category)
        out["event_properties"] = props
        return out
    if isinstance(event, Identify):
        out = _common(event, "$identify")
        out["user_properties"] = {"$set": dict(event.traits)}
        return out
    return Rejected(
        reason=f"the amplitude destination does not send {event.event_type} events "
        "(it sends track, page, screen and identify); remove it from `events`"
    )


def _common(event: Event, event_type: str) -> dict[str, Any]:
    out: dict[str, Any] = _context_fields(event.context)
    out["event_type"] = event_type
    if event.userId:
        out["user_id"] = str(event.userId)
    if event.anonymousId:
        out["device_id"] = str(event.anonymousId)
    time_ms = event_time_ms(event)
    if time_ms is not None:
        out["time"] = time_ms
    out["insert_id"] = insert_id(event)
    out["library"] = LIBRARY
    return out


def insert_id(event: Event) -> str:
    """The messageId; an event without one gets a stable hash of its canonical JSON."""
    if event.messageId:
        return event.messageId
    encoded = msgspec.json.encode(event_to_dict(event), order="sorted")
    return hashlib.sha256(encoded).hexdigest()[:32]


def _context_fields(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, name in _CONTEXT_FIELDS:
        value: Any = context
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str | int | float | bool) and value != "":
            out[name] = value
    return out
