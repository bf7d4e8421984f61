"""Small helpers for connectors that talk to an HTTP service, whatever client they use.

Every HTTP connector needs the same three answers: which base URL to send to (the
instance's ``endpoint`` override, else its region's endpoint), how long the service asked
to wait (``Retry-After``), and how to keep secrets out of text that came back from the
network (error bodies that echo an API key: ``SecretRedactor``, in ``_secrets.py`` with the
rest of secret handling). They live in the contract package every connector already
depends on, so each connector does not carry its own copy; nothing here imports an HTTP
client, so a connector keeps the one it prefers (httpx, aiohttp, ...).
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

from ._connector import ConnectorContext
from ._spec import ConnectorSpec


def endpoint_url(spec: ConnectorSpec, context: ConnectorContext) -> str:
    """The base URL for this instance, without a trailing ``/``.

    The instance's ``endpoint`` override (a proxy, a test server) wins; else the endpoint
    ``spec`` declares for the instance's region. Raises ValueError naming the instance, the
    region and the fix when neither gives one, so a bad config fails when the instance is
    made rather than on the first send. Reads ``endpoint`` with ``getattr`` so hosts older
    than that context property work too.
    """
    override = getattr(context, "endpoint", None)
    if override:
        return str(override).rstrip("/")
    url = spec.endpoint_for(context.region)
    if url is None:
        known = ", ".join(sorted(spec.regions))
        kind = "destination" if spec.direction == "out" else "source"
        raise ValueError(
            f"{kind} {context.instance_id!r}: {spec.name} has no endpoint for region "
            f"{context.region!r}; set `region` to one of {known} or set `endpoint`"
        )
    return url.rstrip("/")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks for, or None when it asks for nothing usable.

    Both forms of RFC 9110 are read: delta-seconds (``"120"``, decimals tolerated) and an
    HTTP date (``"Wed, 21 Oct 2015 07:28:00 GMT"``, a date without a zone taken as UTC).
    A date in the past is 0; a value that is not a number or a date, or not finite, is
    None, so the caller falls back to its own backoff. ``now`` (timezone-aware) is for tests.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
