"""Segment events as Customer.io Track API operations.

An event with a userId is about a known person and becomes an item of the v2 batch
endpoint (``identifiers: {"id": userId}``):

- identify -> ``action: identify`` with the traits as attributes (``createdAt`` becomes
  ``created_at`` in Unix seconds) and ``anonymous_id`` (so Customer.io merges the anonymous
  events it holds for that id into the person);
- track -> ``action: event`` named after ``event``, ``attributes`` = ``properties``;
- page -> ``action: page`` named after the page URL (``properties.url``, else
  ``context.page.url``, ``properties.path``, the page name), Customer.io's convention;
- screen -> ``action: screen`` named after the screen;
- alias -> ``action: merge`` of ``previousId`` (secondary) into ``userId`` (primary).

An event with only an anonymousId goes to ``POST /api/v1/events`` with ``anonymous_id`` and
``type`` event/page/screen, the documented way to send anonymous activity; an anonymous
identify has no person to upsert and is rejected with the reason.

Events, page and screen views carry ``id``: a ULID whose time part is the event's time and
whose random part comes from a hash of the messageId, so the same event always gets the
same ULID and Customer.io drops a retried duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from headwater_spec import (
    Alias,
    Event,
    Identify,
    Page,
    Rejected,
    Screen,
    Track,
    event_time_ms,
    event_to_dict,
)

MAX_ITEM_BYTES = 32 * 1024
"""Customer.io: "Each of the requests within the batch must also be 32kb or smaller"."""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Plan(msgspec.Struct):
    """What one batch becomes: v2 batch items, anonymous v1 events, refusals; by index."""

    items: list[tuple[int, dict[str, Any]]]
    anonymous: list[tuple[int, dict[str, Any]]]
    rejected: dict[int, Rejected]


def plan_batch(batch: Sequence[Event]) -> Plan:
    plan = Plan(items=[], anonymous=[], rejected={})
    for index, event in enumerate(batch):
        try:
            if event.userId:
                item = person_item(event)
                if len(msgspec.json.encode(item)) > MAX_ITEM_BYTES:
                    raise _Unmappable("the event is larger than the 32 KB Customer.io accepts")
                plan.items.append((index, item))
            else:
                plan.anonymous.append((index, anonymous_event(event)))
        except _Unmappable as exc:
            plan.rejected[index] = Rejected(reason=str(exc))
    return plan


class _Unmappable(ValueError):
    pass


def person_item(event: Event) -> dict[str, Any]:
    """The v2 batch item for an event whose userId names the person."""
    person = {"id": str(event.userId)}
    if isinstance(event, Alias):
        return {
            "type": "person",
            "action": "merge",
            "primary": person,
            "secondary": {"id": str(event.previousId)},
        }
    item: dict[str, Any] = {"type": "person", "identifiers": person}
    seconds = _seconds(event)
    if isinstance(event, Identify):
        item["action"] = "identify"
        item["attributes"] = _person_attributes(event)
    else:
        action, name, attributes = _activity(event)
        item["action"] = action
        item["name"] = name
        item["id"] = ulid(event)
        item["attributes"] = attributes
    if seconds is not None:
        item["timestamp"] = seconds
    return item


def anonymous_event(event: Event) -> dict[str, Any]:
    """The body of ``POST /api/v1/events`` for an event without a userId."""
    if isinstance(event, Identify):
        raise _Unmappable(
            "Customer.io identifies people by id: an identify without userId has no person "
            "to create or update"
        )
    action, name, data = _activity(event)
    body: dict[str, Any] = {
        "name": name,
        "type": action,
        "anonymous_id": str(event.anonymousId),
        "id": ulid(event),
        "data": data,
    }
    seconds = _seconds(event)
    if seconds is not None:
        body["timestamp"] = seconds
    return body


def _activity(event: Event) -> tuple[str, str, dict[str, Any]]:
    """(type, name, data) of a track, page or screen."""
    if isinstance(event, Track):
        return "event", event.event, dict(event.properties)
    if isinstance(event, Page | Screen):
        data = dict(event.properties)
        if event.name:
            data.setdefault("name", event.name)
        if event.category:
            data.setdefault("category", event.category)
        if isinstance(event, Screen):
            if not event.name:
                raise _Unmappable("a screen view needs a `name` for Customer.io to file it under")
            return "screen", event.name, data
        page = event.context.get("page")
        page_url = page.get("url") if isinstance(page, dict) else None
        for candidate in (event.properties.get("url"), page_url, event.properties.get("path")):
            if isinstance(candidate, str) and candidate.strip():
                return "page", candidate.strip(), data
        if event.name:
            return "page", event.name, data
        raise _Unmappable("a page view needs a URL (`properties.url`) or a `name`")
    raise _Unmappable(
        f"the customerio destination does not send {event.event_type} events "
        "(it sends identify, track, page, screen and alias); remove it from `events`"
    )


def _person_attributes(event: Identify) -> dict[str, Any]:
    attributes = dict(event.traits)
    created = attributes.pop("createdAt", None)
    if created is not None and "created_at" not in attributes:
        seconds = _iso_seconds(created) if isinstance(created, str) else created
        if seconds is not None:
            attributes["created_at"] = seconds
    if event.anonymousId:
        attributes.setdefault("anonymous_id", str(event.anonymousId))
    return attributes


def ulid(event: Event) -> str:
    """A deterministic ULID: event time (ms) + 80 bits of SHA-256 of the messageId."""
    ms = event_time_ms(event) or 0
    ms = max(0, min(ms, (1 << 48) - 1))
    seed = (
        event.messageId.encode()
        if event.messageId
        else msgspec.json.encode(event_to_dict(event), order="sorted")
    )
    value = (ms << 80) | int.from_bytes(hashlib.sha256(seed).digest()[:10], "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def _seconds(event: Event) -> int | None:
    ms = event_time_ms(event)
    return ms // 1000 if ms is not None else None


def _iso_seconds(value: str) -> int | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())
