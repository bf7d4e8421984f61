"""Segment events as Mixpanel records: /import events and /engage profile updates.

The mapping follows what users of Segment's Mixpanel destination expect:

- track -> an event named after ``event``, with ``properties``;
- page / screen -> "Viewed <name> Page" / "Viewed <name> Screen" ("Loaded a Page" /
  "Loaded a Screen" without a name), with ``properties`` plus ``name`` and ``category``;
- identify -> a ``$set`` of the traits on the user profile (/engage; well-known traits get
  Mixpanel's reserved names, e.g. ``email`` -> ``$email``) and, when the event carries both
  ids, an ``$identify`` event with ``$identified_id``/``$anon_id`` and ``$user_id``/
  ``$device_id``, which ties the anonymous history to the user under both ID-merge systems.
  An identify with neither (no traits, one id) has nothing to tell Mixpanel and is
  reported delivered without a request.

Every /import event carries ``distinct_id`` (userId, else anonymousId), ``$user_id`` and
``$device_id`` (anonymousId) for Simplified ID Merge, ``time`` in milliseconds and
``$insert_id``. Mixpanel de-duplicates on event name, distinct_id, time and $insert_id, so
all four must come out the same on every retry: nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
import re
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

INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
"""What Mixpanel accepts as $insert_id: at most 36 letters, digits or dashes."""

_TRAIT_NAMES = {
    "email": "$email",
    "name": "$name",
    "firstName": "$first_name",
    "lastName": "$last_name",
    "phone": "$phone",
    "avatar": "$avatar",
    "createdAt": "$created",
}
"""Segment traits with a reserved Mixpanel profile property."""

_CONTEXT_PROPERTIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ip",), "ip"),
    (("page", "url"), "$current_url"),
    (("page", "referrer"), "$referrer"),
    (("os", "name"), "$os"),
    (("os", "version"), "$os_version"),
    (("app", "version"), "$app_version_string"),
    (("app", "build"), "$app_build_number"),
    (("device", "manufacturer"), "$manufacturer"),
    (("device", "model"), "$model"),
    (("screen", "width"), "$screen_width"),
    (("screen", "height"), "$screen_height"),
    (("network", "carrier"), "$carrier"),
    (("network", "wifi"), "$wifi"),
    (("campaign", "name"), "utm_campaign"),
    (("campaign", "source"), "utm_source"),
    (("campaign", "medium"), "utm_medium"),
    (("campaign", "term"), "utm_term"),
    (("campaign", "content"), "utm_content"),
)
"""Segment ``context`` fields copied onto events under Mixpanel's default property names."""


class Plan(msgspec.Struct):
    """What one batch becomes: records per endpoint, each tagged with its event's index."""

    imports: list[tuple[int, dict[str, Any]]] = []
    engages: list[tuple[int, dict[str, Any]]] = []
    rejected: dict[int, Rejected] = {}


def plan_batch(batch: Sequence[Event], token: str) -> Plan:
    """Map every event; one that cannot be sent is rejected here with the reason."""
    plan = Plan(imports=[], engages=[], rejected={})
    for index, event in enumerate(batch):
        try:
            _plan_event(plan, index, event, token)
        except _Unmappable as exc:
            plan.rejected[index] = Rejected(reason=str(exc))
    return plan


class _Unmappable(ValueError):
    pass


def _plan_event(plan: Plan, index: int, event: Event, token: str) -> None:
    if isinstance(event, Track):
        plan.imports.append((index, import_event(event, event.event, event.properties, token)))
    elif isinstance(event, Page | Screen):
        kind = "Page" if isinstance(event, Page) else "Screen"
        name = f"Viewed {event.name} {kind}" if event.name else f"Loaded a {kind}"
        props = dict(event.properties)
        if event.name:
            props.setdefault("name", event.name)
        if event.category:
            props.setdefault("category", event.category)
        plan.imports.append((index, import_event(event, name, props, token)))
    elif isinstance(event, Identify):
        if event.traits:
            plan.engages.append((index, profile_set(event, token)))
        if event.userId and event.anonymousId:
            props = {"$identified_id": event.userId, "$anon_id": event.anonymousId}
            plan.imports.append((index, import_event(event, "$identify", props, token)))
    else:
        raise _Unmappable(
            f"the mixpanel destination does not send {event.event_type} events "
            "(it sends track, page, screen and identify); remove it from `events`"
        )


def import_event(event: Event, name: str, properties: dict[str, Any], token: str) -> dict[str, Any]:
    """One /import record; computed fields win over same-named user properties."""
    time_ms = event_time_ms(event)
    if time_ms is None:
        raise _Unmappable(
            "no usable time: Mixpanel needs one and de-duplicates on it, so none is invented; "
            "the event has no parseable `timestamp`, `originalTimestamp`, `receivedAt` or `sentAt`"
        )
    props: dict[str, Any] = _context_properties(event.context)
    props.update(properties)
    props["token"] = token
    props["time"] = time_ms
    props["distinct_id"] = str(event.userId or event.anonymousId or "")
    props["$insert_id"] = insert_id(event)
    if event.userId:
        props["$user_id"] = str(event.userId)
    if event.anonymousId:
        props["$device_id"] = str(event.anonymousId)
    return {"event": name, "properties": props}


def profile_set(event: Identify, token: str) -> dict[str, Any]:
    """One /engage ``$set`` update. ``$ip`` "0" stops Mixpanel from geolocating Headwater."""
    traits = {_TRAIT_NAMES.get(k, k): v for k, v in event.traits.items()}
    ip = event.context.get("ip")
    return {
        "$token": token,
        "$distinct_id": str(event.userId or event.anonymousId or ""),
        "$ip": ip if isinstance(ip, str) and ip else "0",
        "$set": traits,
    }


def insert_id(event: Event) -> str:
    """messageId when Mixpanel accepts it as is, else a stable 32-hex-digit hash of it.

    An event without messageId hashes its own canonical JSON, which is equally stable.
    """
    mid = event.messageId
    if mid and INSERT_ID.fullmatch(mid):
        return mid
    source = mid.encode() if mid else msgspec.json.encode(event_to_dict(event), order="sorted")
    return hashlib.sha256(source).hexdigest()[:32]


def _context_properties(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, name in _CONTEXT_PROPERTIES:
        value: Any = context
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str | int | float | bool) and value != "":
            out[name] = value
    return out
