"""HTTP plumbing: the base URL, Retry-After, transport errors as outcomes, secret scrubbing.

Kept apart from the Customer.io-specific mapping so the rules a reviewer checks against the
API docs (``_responses.py``) are not buried under connection handling.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Iterable
from datetime import UTC, datetime

import httpx

from headwater_spec import ConnectorContext, ConnectorSpec, Retry


def base_url(spec: ConnectorSpec, context: ConnectorContext) -> str:
    """The override from the context when set, else the endpoint of the instance's region.

    Raises ValueError naming the region and the fix when neither gives a URL.
    """
    override = getattr(context, "endpoint", None)
    if override:
        return str(override).rstrip("/")
    url = spec.endpoint_for(context.region)
    if url is None:
        known = ", ".join(sorted(spec.regions))
        raise ValueError(
            f"destination {context.instance_id!r}: {spec.name} has no endpoint for region "
            f"{context.region!r}; set `region` to one of {known} or set `endpoint`"
        )
    return url.rstrip("/")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or HTTP-date), or None."""
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


def transport_retry(exc: httpx.HTTPError, what: str, timeout: float) -> Retry:
    """A request that got no HTTP answer: worth retrying (events carry a dedupe id)."""
    if isinstance(exc, httpx.TimeoutException):
        return Retry(reason=f"{what}: no answer within {timeout:g}s ({type(exc).__name__})")
    detail = str(exc) or type(exc).__name__
    return Retry(reason=f"{what}: {type(exc).__name__}: {detail}")


class Redactor:
    """Replaces secret values in text that came from the network (error bodies echo keys)."""

    def __init__(self, secrets: Iterable[object]) -> None:
        values = {str(s) for s in secrets if s}
        self._secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
