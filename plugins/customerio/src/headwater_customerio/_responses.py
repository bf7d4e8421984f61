"""Customer.io Track API answers as per-event outcomes, as its API reference documents them.

Followed: docs.customer.io/api/track/ (the OpenAPI of the Journeys Track API):

- ``POST /api/v2/batch``: 200 (empty object) means every item was accepted; 207 means "at
  least one object in the batch was invalid; all other requests are accepted", with
  ``errors[]`` naming each failing item by ``batch_index`` (and ``reason``, ``field``,
  ``message``); 400 means "the entire request was malformed or invalid"; 401 is bad
  credentials. A batch must be under 500 KB: an over-size answer (413) splits it.
- ``POST /api/v1/events`` (anonymous events): 200, or 400 with ``meta.errors``.
- The Track API's fair-use limit is 100 requests/s; a 429 is retried after Retry-After.
- 401/403 are credential problems no event causes: retried, not dead-lettered. 408, 5xx:
  retried.

``None`` means "split the request in two and send each half".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from headwater_spec import DELIVERED, Outcome, Rejected, Retry, retry_after_seconds

Redact = Callable[[str], str]


def batch_outcomes(response: httpx.Response, count: int, redact: Redact) -> list[Outcome] | None:
    """Outcomes of the ``count`` items of one ``/api/v2/batch`` request, or None to split."""
    status = response.status_code
    if status == 207:
        answer = _answer(response)
        errors = answer.get("errors")
        outcomes: list[Outcome] = [DELIVERED] * count
        for error in errors if isinstance(errors, list) else []:
            index = error.get("batch_index") if isinstance(error, dict) else None
            if isinstance(index, int) and 0 <= index < count:
                outcomes[index] = Rejected(
                    reason=redact(f"Customer.io rejected the item: {_describe(error)}")
                )
        return outcomes
    if 200 <= status < 300:
        return [DELIVERED] * count
    return _failure(response, count, redact, "/api/v2/batch")


def event_outcome(response: httpx.Response, redact: Redact) -> Outcome:
    """The outcome of one anonymous ``/api/v1/events`` request."""
    if 200 <= response.status_code < 300:
        return DELIVERED
    found = _failure(response, 1, redact, "/api/v1/events")
    assert found is not None
    return found[0]


def _failure(
    response: httpx.Response, count: int, redact: Redact, path: str
) -> list[Outcome] | None:
    status = response.status_code
    if status == 413:
        if count > 1:
            return None
        return [
            Rejected(reason=f"the event is larger than Customer.io accepts on {path} (HTTP 413)")
        ]
    detail = _errors_text(response)
    if status in (401, 403):
        reason = (
            f"Customer.io {path} refused the credentials (HTTP {status}: {detail}); check "
            "site_id and api_key, and that `region` is the workspace's region"
        )
        return [Retry(reason=redact(reason))] * count
    if status == 429:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return [Retry(reason=f"Customer.io {path} rate limit (HTTP 429)", retry_after=wait)] * count
    reason = redact(f"Customer.io {path} answered HTTP {status}: {detail}")
    if status == 408 or status >= 500:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return [Retry(reason=reason, retry_after=wait)] * count
    return [Rejected(reason=reason)] * count


def _describe(error: dict[str, Any]) -> str:
    field = error.get("field")
    message = error.get("message") or error.get("reason") or "invalid"
    reason = error.get("reason")
    text = f"`{field}`: {message}" if field else str(message)
    return f"{text} ({reason})" if reason and reason != message else text


def _errors_text(response: httpx.Response) -> str:
    """The documented error lists (v2 ``errors[]``, v1 ``meta.errors``), else the body."""
    answer = _answer(response)
    errors = answer.get("errors")
    meta = answer.get("meta")
    if isinstance(errors, list) and errors:
        return "; ".join(_describe(e) if isinstance(e, dict) else str(e) for e in errors)
    if isinstance(meta, dict):
        listed = meta.get("errors")
        if isinstance(listed, list) and listed:
            return "; ".join(str(e) for e in listed)
        if meta.get("error"):
            return str(meta["error"])
    text = response.content[:300].decode("utf-8", "replace").strip()
    return text or response.reason_phrase or "(empty body)"


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
