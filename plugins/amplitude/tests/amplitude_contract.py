"""A local stand-in for Amplitude's HTTP V2 API that enforces its documented contract.

Amplitude cannot be reached from the test machines, so this server plays it on loopback,
checking what amplitude.com/docs/apis/analytics/http-v2 requires and answering as it says:

- POST /2/httpapi with ``Content-Type: application/json`` and a JSON body
  ``{"api_key": str, "events": [...], "options": {"min_id_length": int}?}``. A missing
  ``api_key``/``events`` is a 400 with ``missing_field``; a wrong key is
  ``400 {"error": "Invalid API key: <key>"}`` (the key echoed back, as Amplitude does).
- At most 2000 events and 1 MB per request, else ``413 Payload too large``.
- Each event needs ``event_type`` and a ``user_id`` or ``device_id`` of at least
  ``min_id_length`` characters (default 5); ``time`` is integer milliseconds; ``$identify``
  carries ``user_properties`` made of operations (``$set``...). A request with invalid
  events is a 400 listing them by index in ``events_with_invalid_fields``,
  ``events_with_missing_fields`` or ``events_with_invalid_id_lengths``; *none* of its
  events is ingested.
- Users or devices over their rate make a 429 listing ``throttled_events`` (and
  ``exceeded_daily_quota_users`` for those over the daily quota); nothing is ingested.
- 200 ``{"code": 200, "events_ingested": n, "payload_size_bytes": n, "server_upload_time": ms}``.

A request the connector should never build (wrong path, method or content type, a body that
is not the documented object) is a *violation*, answered 400 and recorded; the test fixture
fails any test with a violation it did not expect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from headwater_amplitude import AmplitudeDestination
from headwater_spec.conformance import ContractServer, RecordedRequest, Reply

API_KEY = "amp-key-0123456789abcdef"
MAX_EVENTS = 2000
MAX_BODY_BYTES = 1_000_000
USER_PROPERTY_OPERATIONS = {
    "$set",
    "$setOnce",
    "$add",
    "$append",
    "$prepend",
    "$unset",
    "$preInsert",
    "$postInsert",
    "$remove",
    "$clearAll",
}

Make = Callable[..., AmplitudeDestination]
"""The ``make_destination`` fixture: (region, endpoint="server", **config) -> destination."""


class AmplitudeAPI(ContractServer):
    """Amplitude's HTTP V2 endpoint for one project."""

    service = "Amplitude"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.max_body_bytes = MAX_BODY_BYTES
        self.events: list[dict[str, Any]] = []
        self.throttled_users: set[str] = set()
        self.quota_users: set[str] = set()

    def answer(self, request: RecordedRequest) -> Reply:
        if request.path != "/2/httpapi":
            return self.violation(f"{request.method} {request.path}: not the HTTP V2 endpoint")
        if request.method != "POST":
            return self.violation(f"/2/httpapi needs POST, got {request.method}")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.violation(
                f"/2/httpapi Content-Type must be application/json, got {ctype!r}"
            )
        if len(request.body) > self.max_body_bytes:
            return Reply.json({"code": 413, "error": "Payload too large"}, 413)
        try:
            body = request.json()
        except ValueError:
            return self.violation("/2/httpapi body is not JSON")
        if not isinstance(body, dict):
            return self.violation("/2/httpapi body must be an object with api_key and events")
        for name in ("api_key", "events"):
            if name not in body:
                return Reply.json(
                    {"code": 400, "error": "Request missing required field", "missing_field": name},
                    400,
                )
        if body["api_key"] != self.api_key:
            return Reply.json({"code": 400, "error": f"Invalid API key: {body['api_key']}"}, 400)
        events = body["events"]
        if not isinstance(events, list) or not events:
            return self.violation("`events` must be a non-empty array")
        if len(events) > MAX_EVENTS:
            return Reply.json({"code": 413, "error": "Payload too large"}, 413)
        options = body.get("options") or {}
        min_id = options.get("min_id_length", 5) if isinstance(options, dict) else 5
        invalid: dict[str, list[int]] = {}
        missing: dict[str, list[int]] = {}
        short: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                return self.violation("each event must be an object")
            for kind, name in self._check(event, min_id):
                target = {"invalid": invalid, "missing": missing, "short": short}[kind]
                target.setdefault(name, []).append(index)
        if invalid or missing or short:
            answer: dict[str, Any] = {"code": 400, "error": "Request has invalid events"}
            if invalid:
                answer["events_with_invalid_fields"] = invalid
            if missing:
                answer["events_with_missing_fields"] = missing
            if short:
                answer["events_with_invalid_id_lengths"] = short
            return Reply.json(answer, 400)
        throttled = [i for i, e in enumerate(events) if e.get("user_id") in self.throttled_users]
        if throttled:
            counts = {u: 31 for u in self.throttled_users}
            return Reply.json(
                {
                    "code": 429,
                    "error": "Too many requests for some devices and users",
                    "eps_threshold": 30,
                    "throttled_devices": {},
                    "throttled_users": counts,
                    "throttled_events": throttled,
                    "exceeded_daily_quota_users": {u: 500001 for u in self.quota_users},
                    "exceeded_daily_quota_devices": {},
                },
                429,
            )
        self.events.extend(events)
        return Reply.json(
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(request.body),
                "server_upload_time": int(time.time() * 1000),
            }
        )

    def _check(self, event: dict[str, Any], min_id: int) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        event_type = event.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            problems.append(("missing", "event_type"))
        elif event_type.startswith("[Amplitude]") or (
            event_type.startswith("$") and event_type not in ("$identify", "$groupidentify")
        ):
            problems.append(("invalid", "event_type"))
        user_id, device_id = event.get("user_id"), event.get("device_id")
        if user_id is None and device_id is None:
            problems.append(("missing", "user_id"))
        for name, value in (("user_id", user_id), ("device_id", device_id)):
            if value is not None and (not isinstance(value, str) or len(value) < min_id):
                problems.append(("short", name))
        when = event.get("time")
        if when is not None and (not isinstance(when, int) or isinstance(when, bool) or when < 0):
            problems.append(("invalid", "time"))
        insert_id = event.get("insert_id")
        if insert_id is not None and not isinstance(insert_id, str):
            problems.append(("invalid", "insert_id"))
        if event_type == "$identify":
            props = event.get("user_properties")
            if (
                not isinstance(props, dict)
                or not props
                or not set(props) <= USER_PROPERTY_OPERATIONS
            ):
                problems.append(("invalid", "user_properties"))
            if "event_properties" in event:
                problems.append(("invalid", "event_properties"))
        return problems

    def unique_events(self) -> list[dict[str, Any]]:
        """What Amplitude keeps: one event per (device_id or user_id, insert_id)."""
        seen: set[tuple[Any, Any]] = set()
        out = []
        for event in self.events:
            key = (event.get("device_id") or event.get("user_id"), event.get("insert_id"))
            if event.get("insert_id") is None or key not in seen:
                seen.add(key)
                out.append(event)
        return out
