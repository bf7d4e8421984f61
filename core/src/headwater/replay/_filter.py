"""A replay job's own filter: sources, event types and event names, all of which must pass.

Applied before the destination's filter (its ``events``, ``sources`` and the events'
``integrations``), so a replay never sends what live delivery would not. An event's name
is a track's ``event`` and a page's or screen's ``name``; other types have none, so a name
filter leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater_spec import EVENT_TYPES, Event, Page, Screen, Track

from ._records import ReplayFilter


class JobFilter:
    def __init__(self, spec: ReplayFilter) -> None:
        self.sources = frozenset(spec.sources) if spec.sources else None
        self.types = frozenset(spec.event_types) if spec.event_types else None
        self.names = frozenset(spec.events) if spec.events else None

    @property
    def everything(self) -> bool:
        return self.sources is None and self.types is None and self.names is None

    def wants(self, source: str, event: Mapping[str, Any]) -> bool:
        if self.sources is not None and source not in self.sources:
            return False
        kind = event.get("type")
        if self.types is not None and kind not in self.types:
            return False
        if self.names is not None:
            name = event.get("event") if kind == "track" else event.get("name")
            return name in self.names
        return True

    def wants_event(self, source: str, event: Event) -> bool:
        """``wants`` for an event already decoded into its model (the same answer)."""
        if self.sources is not None and source not in self.sources:
            return False
        kind = event.event_type
        if self.types is not None and kind not in self.types:
            return False
        if self.names is not None:
            if isinstance(event, Track):
                return event.event in self.names
            if isinstance(event, Page | Screen):
                return event.name in self.names
            return False
        return True


def check_filter(spec: ReplayFilter) -> None:
    """Raise ValueError for an event type that does not exist (a typo would match nothing)."""
    for kind in spec.event_types or ():
        if kind not in EVENT_TYPES:
            raise ValueError(
                f"--event-type {kind!r} is not an event type; use {', '.join(EVENT_TYPES)}"
            )
