"""Which events a destination wants.

Three filters, all of which must pass:

- the instance's ``events`` (event types) and the connector's declared ``event_types``;
- the instance's ``sources`` (source instance ids the event came in through);
- the event's own ``integrations`` object, with Segment's semantics: a key naming this
  destination decides (any truthy value, including an options object, sends; ``false``
  skips); otherwise ``All`` decides, and ``All`` defaults to true. The names that match a
  destination are its instance id, its connector name and its connector's title
  (``"Mixpanel"``), compared case-insensitively, most specific first, so
  ``{"All": false, "Mixpanel": true}`` reaches a mixpanel destination and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from headwater_spec import Event


class EventFilter:
    """A destination's filter, applied to the stored event dict before it is decoded."""

    def __init__(
        self,
        *,
        event_types: Iterable[str] | None = None,
        sources: Iterable[str] | None = None,
        names: Iterable[str] = (),
    ) -> None:
        self.event_types = frozenset(event_types) if event_types is not None else None
        self.sources = frozenset(sources) if sources is not None else None
        self.names = tuple(dict.fromkeys(n.casefold() for n in names if n))
        self.open = self.event_types is None and self.sources is None
        """Every type from every source: only an event's ``integrations`` can say no (the
        reader skips the call for an event without them)."""

    def wants(self, source: str, event: Mapping[str, Any]) -> bool:
        if self.event_types is not None and event.get("type") not in self.event_types:
            return False
        if self.sources is not None and source not in self.sources:
            return False
        integrations = event.get("integrations")
        if not integrations or not isinstance(integrations, dict):
            return True
        return self.integrations_allow(integrations)

    def wants_event(self, source: str, event: Event) -> bool:
        """``wants`` for an event already decoded into its model (the same answer)."""
        return self.wants_routed(source, event.event_type, event.integrations)

    def wants_routed(self, source: str, kind: str, integrations: Mapping[str, Any]) -> bool:
        """``wants`` from the routing fields of an event not yet decoded (its type and
        ``integrations`` as the model has them: the same answer)."""
        if self.event_types is not None and kind not in self.event_types:
            return False
        if self.sources is not None and source not in self.sources:
            return False
        return not integrations or self.integrations_allow(integrations)

    def integrations_allow(self, integrations: Mapping[str, Any]) -> bool:
        folded = {str(k).casefold(): v for k, v in integrations.items()}
        for name in self.names:
            if name in folded:
                return _enabled(folded[name])
        return _enabled(folded.get("all", True))


def _enabled(value: Any) -> bool:
    """Segment treats an options object as "on"; only false/null/0 turn a destination off."""
    if isinstance(value, dict):
        return True
    return bool(value)
