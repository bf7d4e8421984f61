"""From a `[destinations.<id>]` table and its connector's spec to delivery settings.

The instance's framework keys win over the spec's delivery hints, except that a batch never
exceeds the connector's declared ``max_batch`` (the service would refuse it).
Defaults where both are silent: 4 lanes, 20 ms linger, the retry defaults of _retry.py.
"""

from __future__ import annotations

from headwater_spec import EVENT_TYPES, ConnectorSpec

from ..config import ConnectorInstance, parse_duration
from ._batcher import BatchLimits
from ._delivery import DeliverySettings
from ._filter import EventFilter
from ._retry import DEFAULT_MAX_AGE, DEFAULT_MAX_ATTEMPTS, RetryPolicy

DEFAULT_CONCURRENCY = 4
DEFAULT_LINGER_MS = 20


class SettingsError(ValueError):
    """A framework key of a destination that cannot be used; names the key and the fix."""


def delivery_settings(
    instance: ConnectorInstance, spec: ConnectorSpec, *, base: DeliverySettings | None = None
) -> DeliverySettings:
    where = f"destinations.{instance.id}"
    hints = spec.delivery
    batch = instance.batch_size or hints.max_batch
    if batch < 1:
        raise SettingsError(f"`{where}.batch_size` must be at least 1")
    batch = min(batch, hints.max_batch)
    if instance.concurrency is not None and instance.concurrency < 1:
        raise SettingsError(f"`{where}.concurrency` must be at least 1")
    if instance.max_attempts is not None and instance.max_attempts < 1:
        raise SettingsError(f"`{where}.max_attempts` must be at least 1")
    if instance.linger_ms is not None and instance.linger_ms < 0:
        raise SettingsError(f"`{where}.linger_ms` must be 0 or more")
    if instance.rate_limit is not None and instance.rate_limit <= 0:
        raise SettingsError(f"`{where}.rate_limit` must be more than 0 requests per second")
    max_age = DEFAULT_MAX_AGE
    if instance.max_age is not None:
        try:
            max_age = parse_duration(instance.max_age)
        except ValueError as exc:
            raise SettingsError(f"`{where}.max_age`: {exc}") from None
    base = base or DeliverySettings()
    policy = RetryPolicy(
        base=base.policy.base,
        cap=base.policy.cap,
        max_attempts=instance.max_attempts or DEFAULT_MAX_ATTEMPTS,
        max_age=max_age,
    )
    linger_ms = instance.linger_ms if instance.linger_ms is not None else DEFAULT_LINGER_MS
    return DeliverySettings(
        limits=BatchLimits(
            max_count=batch, max_bytes=hints.max_batch_bytes, linger=linger_ms / 1000.0
        ),
        concurrency=instance.concurrency or DEFAULT_CONCURRENCY,
        max_in_flight=base.max_in_flight,
        policy=policy,
        rate_limit=instance.rate_limit or hints.rate_limit,
        start=instance.start,
        poll_interval=base.poll_interval,
        redrive_interval=base.redrive_interval,
        send_timeout=base.send_timeout,
    )


def event_filter(instance: ConnectorInstance, spec: ConnectorSpec) -> EventFilter:
    where = f"destinations.{instance.id}"
    accepted = set(spec.event_types)
    types = accepted
    if instance.events is not None:
        unknown = [t for t in instance.events if t not in EVENT_TYPES]
        if unknown:
            raise SettingsError(
                f"`{where}.events`: unknown event type {unknown[0]!r}; use "
                + ", ".join(EVENT_TYPES)
            )
        types = accepted & set(instance.events)
    return EventFilter(
        event_types=None if types == set(EVENT_TYPES) else types,
        sources=instance.sources,
        names=(instance.id, spec.name, spec.title or ""),
    )
