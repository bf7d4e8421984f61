"""What an HTTP answer means for the events of the batch it carried.

2xx: delivered. 408, 425, 429 and 5xx: retry (429 and 503 pass the ``Retry-After`` on, in
seconds or as an HTTP date). Any other status: the receiver refused the batch for good, and
the reason (status and the start of the body) goes to the dead-letter table. The router
splits a batch that was refused as a whole, so one bad event does not take its neighbours
with it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from headwater_spec import DELIVERED, Outcome, Rejected, Retry, retry_after_seconds

RETRYABLE = frozenset({408, 425, 429})
REASON_BODY_CHARS = 200


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    ``headwater_spec.retry_after_seconds`` with ``now`` as a Unix time, kept for callers of
    this package's public name.
    """
    when = None if now is None else datetime.fromtimestamp(now, UTC)
    return retry_after_seconds(value, now=when)


def outcomes_for(
    status: int,
    body: bytes,
    retry_after: str | None,
    count: int,
    redact: Callable[[str], str] = str,
) -> list[Outcome]:
    """``redact`` masks the instance's secrets in the reason: receivers echo what they
    were sent (``401 bad token Bearer ...``), and reasons are stored and shown."""
    if 200 <= status < 300:
        return [DELIVERED] * count
    # masked before it is cut, so a secret across the cut is masked whole
    text = redact(body[: REASON_BODY_CHARS + 4096].decode("utf-8", "replace"))
    snippet = text[:REASON_BODY_CHARS].strip()
    reason = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in RETRYABLE or status >= 500:
        retry: Outcome = Retry(reason=reason, retry_after=parse_retry_after(retry_after))
        return [retry] * count
    return [Rejected(reason=reason)] * count
