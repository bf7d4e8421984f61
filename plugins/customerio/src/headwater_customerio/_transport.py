"""A request that got no HTTP answer, as an outcome: the one piece of HTTP plumbing that
depends on the client (httpx), so it stays here while the rest (``endpoint_url``,
``retry_after_seconds``, ``SecretRedactor``) comes from ``headwater_spec``.
"""

from __future__ import annotations

import httpx

from headwater_spec import Retry


def transport_retry(exc: httpx.HTTPError, what: str, timeout: float) -> Retry:
    """A request that got no HTTP answer: worth retrying (events carry a dedupe id)."""
    if isinstance(exc, httpx.TimeoutException):
        return Retry(reason=f"{what}: no answer within {timeout:g}s ({type(exc).__name__})")
    detail = str(exc) or type(exc).__name__
    return Retry(reason=f"{what}: {type(exc).__name__}: {detail}")
