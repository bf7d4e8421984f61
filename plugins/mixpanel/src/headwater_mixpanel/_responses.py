"""Mixpanel answers as per-record outcomes, following Mixpanel's documented behaviour.

- /import with ``strict=1`` (docs.mixpanel.com/reference/import-events and
  /troubleshooting/errors/400-bad-request): 200 means every record was ingested; 400 is a
  *partial success* whose ``failed_records`` name the rejected records by ``index`` (the
  others were ingested); 413 means the body is over the size limit, "split the batch and
  send it again"; 429 means the project is over its rate limit, "retry with exponential
  backoff" (no Retry-After is documented; one is honoured when present).
- /engage (reference/profile-set): "returns 200 OK even if there are data validation
  issues"; with ``verbose=1`` the body is ``{"status": 1|0, "error": ...}``. A failure names
  no record, so a failed request of several updates is split to find the bad one.
- 401/403 are credential problems that no event causes: retried, not dead-lettered, so
  fixing the config delivers them. 408 and 5xx are passing failures: retried.

``None`` from these functions means "split the request in two and send each half".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
import msgspec

from headwater_spec import DELIVERED, Outcome, Rejected, Retry, retry_after_seconds

Redact = Callable[[str], str]


class FailedRecord(msgspec.Struct):
    index: int
    field: str = ""
    message: str = ""
    insert_id: str = ""


class ImportAnswer(msgspec.Struct):
    code: int | None = None
    error: str = ""
    status: str = ""
    num_records_imported: int | None = None
    failed_records: list[FailedRecord] | None = None


def import_outcomes(response: httpx.Response, count: int, redact: Redact) -> list[Outcome] | None:
    """Outcomes of one /import request of ``count`` records, or None to split it."""
    status = response.status_code
    if 200 <= status < 300:
        return [DELIVERED] * count
    handled, common = _common(response, count, redact, "/import")
    if handled:
        return common
    answer = _decode(response.content, ImportAnswer)
    if status == 400 and answer is not None and answer.failed_records:
        outcomes: list[Outcome] = [DELIVERED] * count
        for record in answer.failed_records:
            if 0 <= record.index < count:
                detail = record.message or answer.error or "failed validation"
                field = f"`{record.field}`: " if record.field else ""
                outcomes[record.index] = Rejected(
                    reason=redact(f"Mixpanel rejected the event: {field}{detail}")
                )
        return outcomes
    detail = answer.error if answer is not None and answer.error else _text(response)
    reason = redact(f"Mixpanel /import answered HTTP {status}: {detail}")
    return [Rejected(reason=reason)] * count


def engage_outcomes(response: httpx.Response, count: int, redact: Redact) -> list[Outcome] | None:
    """Outcomes of one /engage request of ``count`` updates, or None to split it."""
    status = response.status_code
    if 200 <= status < 300:
        error = _engage_failure(response.content)
        if error is None:
            return [DELIVERED] * count
        if count > 1:
            return None
        return [Rejected(reason=redact(f"Mixpanel refused the profile update: {error}"))]
    handled, common = _common(response, count, redact, "/engage")
    if handled:
        return common
    if count > 1:
        return None
    reason = redact(f"Mixpanel /engage answered HTTP {status}: {_text(response)}")
    return [Rejected(reason=reason)]


def _engage_failure(content: bytes) -> str | None:
    """The failure a 2xx of /engage reports (``0``, or ``{"status": 0, "error": ...}`` with
    verbose=1), or None when it reports none."""
    text = content.strip()
    if text == b"0":
        return "update refused (no detail: verbose=0)"
    try:
        decoded = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    if isinstance(decoded, dict) and decoded.get("status") == 0:
        return str(decoded.get("error") or "update refused")
    return None


def _common(
    response: httpx.Response, count: int, redact: Redact, path: str
) -> tuple[bool, list[Outcome] | None]:
    """Statuses both endpoints treat alike: (True, outcomes or None to split); else (False, _)."""
    status = response.status_code
    if status == 413:
        if count > 1:
            return True, None
        reason = f"the event is larger than Mixpanel accepts on {path} (HTTP 413)"
        return True, [Rejected(reason=reason)]
    if status in (401, 403):
        reason = redact(
            f"Mixpanel {path} refused the credentials (HTTP {status}: {_text(response)}); "
            "check project_token / the service account and project_id"
        )
        return True, [Retry(reason=reason)] * count
    if status == 429:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        reason = f"Mixpanel {path} rate limit (HTTP 429)"
        return True, [Retry(reason=reason, retry_after=wait)] * count
    if status == 408 or status >= 500:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        reason = redact(f"Mixpanel {path} answered HTTP {status}: {_text(response)}")
        return True, [Retry(reason=reason, retry_after=wait)] * count
    return False, None


T = TypeVar("T")


def _decode(content: bytes, cls: type[T]) -> T | None:
    try:
        return msgspec.json.decode(content, type=cls)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _text(response: httpx.Response, limit: int = 300) -> str:
    text = response.content[:limit].decode("utf-8", "replace").strip()
    return text or response.reason_phrase or "(empty body)"
