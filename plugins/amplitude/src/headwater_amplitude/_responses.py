"""Amplitude HTTP V2 answers as per-event verdicts, as Amplitude documents them.

Followed: amplitude.com/docs/apis/analytics/http-v2 (responses, limits) and
/http-api-batching-retries ("Retry 429 and 5xx responses with backoff. When a 400 response
lists rejected events, remove those events and resend the rest"), and the response handling
of Amplitude's own Python SDK (amplitude/Amplitude-Python ``processor.py``):

- 200: every event ingested.
- 400: *nothing* was ingested. The events named in ``events_with_invalid_fields``,
  ``events_with_missing_fields``, ``events_with_invalid_id_lengths`` or ``silenced_events``
  are rejected with the field; the others are resent. "Invalid API key" is a credential
  problem: retried, not dead-lettered. A 400 naming no event (``missing_field``) rejects all.
- 413: too many events or bytes in one request: split in halves; one event alone is rejected.
- 429: nothing was ingested. ``throttled_events`` (users or devices over 30 events/s) wait
  30 s, or the Retry-After when one is sent; those whose user or device is in
  ``exceeded_daily_quota_*`` wait for the next UTC day; the others are resent.
- 401/403 credentials, 408, 5xx (503 may have ingested: insert_id makes the retry safe):
  retried.

A verdict is an Outcome, or ``RESEND`` for "not ingested, through no fault of its own: send
it again now". ``None`` means "split the request in two".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from headwater_spec import DELIVERED, Outcome, Rejected, Retry, retry_after_seconds

THROTTLE_WAIT = 30.0
"""Amplitude: pause a throttled user or device for 30 seconds before sending again."""

Redact = Callable[[str], str]


class Resend:
    """Verdict for an event Amplitude did not ingest only because others were refused."""

    def __repr__(self) -> str:
        return "RESEND"


RESEND = Resend()
Verdict = Outcome | Resend


def verdicts(
    response: httpx.Response,
    events: Sequence[dict[str, Any]],
    redact: Redact,
    *,
    now: datetime | None = None,
) -> list[Verdict] | None:
    """Verdicts for the events of one request, in order, or None to split it."""
    status = response.status_code
    count = len(events)
    if 200 <= status < 300:
        return [DELIVERED] * count
    answer = _answer(response)
    error = str(answer.get("error") or "") or _text(response)
    if status == 413:
        if count > 1:
            return None
        return [Rejected(reason="the event is larger than Amplitude accepts (HTTP 413)")]
    if status == 400:
        return _bad_request(answer, error, count, redact)
    if status == 429:
        return _throttled(response, answer, events, now or datetime.now(UTC))
    if status in (401, 403):
        reason = f"Amplitude refused the credentials (HTTP {status}: {error}); check api_key"
        return [Retry(reason=redact(reason))] * count
    reason = redact(f"Amplitude answered HTTP {status}: {error}")
    if status == 408 or status >= 500:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        return [Retry(reason=reason, retry_after=wait)] * count
    return [Rejected(reason=reason)] * count


def _bad_request(answer: dict[str, Any], error: str, count: int, redact: Redact) -> list[Verdict]:
    if error.lower().startswith("invalid api key"):
        reason = redact(f"Amplitude refused the api_key (HTTP 400: {error}); check api_key")
        return [Retry(reason=reason)] * count
    problems: dict[int, list[str]] = {}
    for key, label in (
        ("events_with_invalid_fields", "invalid `{}`"),
        ("events_with_missing_fields", "missing `{}`"),
        ("events_with_invalid_id_lengths", "`{}` shorter than the minimum id length"),
    ):
        for field, indices in _index_map(answer.get(key)).items():
            for index in indices:
                problems.setdefault(index, []).append(label.format(field))
    for index in _indices(answer.get("silenced_events")):
        problems.setdefault(index, []).append("silenced by Amplitude (blocked user or device)")
    problems = {i: p for i, p in problems.items() if 0 <= i < count}
    if not problems:
        missing = answer.get("missing_field")
        detail = f"{error} (missing `{missing}`)" if missing else error
        reason = redact(f"Amplitude refused the request (HTTP 400): {detail}")
        return [Rejected(reason=reason)] * count
    out: list[Verdict] = []
    for index in range(count):
        if index in problems:
            reason = "Amplitude rejected the event: " + "; ".join(problems[index])
            out.append(Rejected(reason=redact(reason)))
        else:
            out.append(RESEND)
    return out


def _throttled(
    response: httpx.Response,
    answer: dict[str, Any],
    events: Sequence[dict[str, Any]],
    now: datetime,
) -> list[Verdict]:
    header_wait = retry_after_seconds(response.headers.get("retry-after"), now=now)
    throttled = {i for i in _indices(answer.get("throttled_events")) if 0 <= i < len(events)}
    if not throttled:
        reason = "Amplitude throttled the request (HTTP 429)"
        return [Retry(reason=reason, retry_after=header_wait)] * len(events)
    quota_users = set(_keys(answer.get("exceeded_daily_quota_users")))
    quota_devices = set(_keys(answer.get("exceeded_daily_quota_devices")))
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    until_tomorrow = (tomorrow - now).total_seconds()
    out: list[Verdict] = []
    for index, event in enumerate(events):
        if index not in throttled:
            out.append(RESEND)
        elif event.get("user_id") in quota_users or event.get("device_id") in quota_devices:
            reason = "Amplitude daily event quota exceeded for this user or device (HTTP 429)"
            out.append(Retry(reason=reason, retry_after=until_tomorrow))
        else:
            reason = "Amplitude throttled this user or device (HTTP 429, over 30 events/s)"
            wait = header_wait if header_wait is not None else THROTTLE_WAIT
            out.append(Retry(reason=reason, retry_after=wait))
    return out


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _index_map(value: Any) -> dict[str, list[int]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _indices(v) for k, v in value.items()}


def _indices(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [i for i in value if isinstance(i, int) and not isinstance(i, bool)]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [str(k) for k in value]
    return []


def _text(response: httpx.Response, limit: int = 300) -> str:
    text = response.content[:limit].decode("utf-8", "replace").strip()
    return text or response.reason_phrase or "(empty body)"
