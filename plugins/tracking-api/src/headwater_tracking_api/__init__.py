"""The `tracking-api` source: an HTTP tracking API wire-compatible with Segment and
Customer.io Data Pipelines, served by the Headwater daemon."""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from ._source import BATCH_PATHS, EVENT_PATHS, TrackingApiSource

__all__ = ["BATCH_PATHS", "EVENT_PATHS", "TrackingApiSource", "register_connectors"]


@hookimpl
def register_connectors(register: Register) -> None:
    register(TrackingApiSource)
