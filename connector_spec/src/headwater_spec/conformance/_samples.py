"""Sample events of every type, shaped like what real SDKs send."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._events import EVENT_TYPES, Event, EventType, event_from_dict

_CONTEXT: dict[str, Any] = {
    "library": {"name": "analytics-python", "version": "2.3.2"},
    "ip": "203.0.113.7",
    "locale": "en-GB",
    "page": {"path": "/pricing", "url": "https://example.com/pricing"},
}

_BODIES: dict[str, dict[str, Any]] = {
    "track": {"event": "Order Completed", "properties": {"revenue": 42.5, "currency": "EUR"}},
    "identify": {"traits": {"email": "ada@example.com", "plan": "pro"}},
    "page": {"name": "Pricing", "category": "Docs", "properties": {"path": "/pricing"}},
    "screen": {"name": "Settings", "properties": {"tab": "billing"}},
    "group": {"groupId": "org-7", "traits": {"name": "Acme", "employees": 12}},
    "alias": {"previousId": "anon-9f2"},
}


def sample_event(kind: EventType, n: int = 0, *, user: str = "user-1") -> Event:
    """One valid event of ``kind`` with a distinctive messageId."""
    data: dict[str, Any] = {
        "type": kind,
        "messageId": f"hw-conformance-{kind}-{n}",
        "userId": user,
        "anonymousId": "anon-9f2",
        "timestamp": "2026-01-15T10:00:00.000Z",
        "sentAt": "2026-01-15T10:00:00.100Z",
        "receivedAt": "2026-01-15T10:00:00.200Z",
        "context": _CONTEXT,
        **_BODIES[kind],
    }
    return event_from_dict(data)


def sample_events(kinds: Iterable[EventType] = EVENT_TYPES, *, n: int = 0) -> list[Event]:
    """One event of each of ``kinds``."""
    return [sample_event(kind, n) for kind in kinds]
