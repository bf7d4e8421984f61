"""A local stand-in for Customer.io's Track API that enforces its documented contract.

Customer.io cannot be reached from the test machines, so this server plays a workspace on
loopback, checking what docs.customer.io/api/track/ requires and answering as it says:

- Every call uses HTTP Basic auth with the Site ID as user and the Track API key as
  password; anything else is a 401.
- ``POST /api/v2/batch``: ``{"batch": [...]}`` of person operations (``identifiers`` with
  exactly one of ``id``/``email``/``cio_id``; ``action`` identify, event, page, screen or
  merge; events, pages and screens need a ``name``; ``id`` must be a ULID; ``timestamp`` is
  Unix seconds; a merge's ``primary`` must already exist). The batch must be under 500 KB
  (the reference states the limit, not the status: this server answers 413) and each item
  32 KB or less. Valid items are applied; invalid ones come back in a 207 with
  ``errors[{batch_index, reason, field, message}]``; a body that is not a batch is a 400.
- ``POST /api/v1/events``: an anonymous event ``{name, anonymous_id, type, id, timestamp,
  data}``; 400 with ``meta.errors`` when invalid.
- ``GET /api/v1/accounts/region``: ``{"url", "region", "environment_id"}`` of the workspace.
- An event whose ``id`` was seen before is ignored (deduplication), as documented.

A request the connector should never build (wrong path, method or content type, a body that
is not JSON) is a *violation*, answered 400 and recorded; the test fixture fails any test
with a violation it did not expect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from headwater_customerio import CustomerIODestination
from headwater_spec.conformance import ContractServer, RecordedRequest, Reply

SITE_ID = "site-c4f0b2a1e9d8"
API_KEY = "cio-key-0123456789abcdef"
MAX_BATCH_BYTES = 500 * 1000
MAX_ITEM_BYTES = 32 * 1024
ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
PERSON_ACTIONS = {"identify", "event", "page", "screen", "merge"}
TRACK_URLS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}

Make = Callable[..., CustomerIODestination]
"""The ``make_destination`` fixture: (region, endpoint="server", **config) -> destination."""


class CustomerIOAPI(ContractServer):
    """One Customer.io workspace's Track API."""

    service = "Customer.io"

    def __init__(self, *, region: str = "us") -> None:
        super().__init__()
        self.credentials = (SITE_ID, API_KEY)
        self.region = region
        self.max_batch_bytes = MAX_BATCH_BYTES
        self.people: dict[str, dict[str, Any]] = {}
        self.activities: list[dict[str, Any]] = []
        self.anonymous: list[dict[str, Any]] = []
        self.duplicates = 0
        self._seen_ids: set[str] = set()

    def answer(self, request: RecordedRequest) -> Reply:
        if request.basic_auth() != self.credentials:
            return Reply.json({"meta": {"error": "Unauthorized request"}}, 401)
        route = (request.method, request.path)
        if route == ("GET", "/api/v1/accounts/region"):
            return Reply.json(
                {"url": TRACK_URLS[self.region], "region": self.region, "environment_id": 7}
            )
        if route not in (("POST", "/api/v2/batch"), ("POST", "/api/v1/events")):
            return self.violation(f"{request.method} {request.path}: not a Track API route")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.violation(f"{request.path} Content-Type must be application/json")
        if request.path == "/api/v2/batch" and len(request.body) >= self.max_batch_bytes:
            return Reply.json(
                {"errors": [{"reason": "too_large", "message": "batch >= 500kb"}]}, 413
            )
        try:
            body = request.json()
        except ValueError:
            return self.violation(f"{request.path} body is not JSON")
        if request.path == "/api/v1/events":
            return self._anonymous_event(body)
        return self._batch(body)

    def _batch(self, body: Any) -> Reply:
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("batch"), list)
            or not body["batch"]
        ):
            return Reply.json(
                {"errors": [{"reason": "invalid", "field": "batch", "message": "required"}]}, 400
            )
        errors = []
        for index, item in enumerate(body["batch"]):
            problem = self._check_item(item)
            if problem is None:
                problem = self._apply(item)
            if problem is not None:
                field_name, message = problem
                errors.append(
                    {
                        "batch_index": index,
                        "reason": "invalid",
                        "field": field_name,
                        "message": message,
                    }
                )
        if errors:
            return Reply.json({"errors": errors}, 207)
        return Reply.json({})

    def _check_item(self, item: Any) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "", "each item must be an object"
        if len(json.dumps(item).encode()) > MAX_ITEM_BYTES:
            return "", "each item must be 32kb or smaller"
        if item.get("type") != "person":
            return "type", "only person operations are expected here"
        action = item.get("action")
        if action not in PERSON_ACTIONS:
            return "action", f"unknown action {action!r}"
        if action == "merge":
            for side in ("primary", "secondary"):
                if _identifier(item.get(side)) is None:
                    return side, "must hold exactly one of id, email, cio_id"
            return None
        if _identifier(item.get("identifiers")) is None:
            return "identifiers", "must hold exactly one of id, email, cio_id"
        timestamp = item.get("timestamp")
        if timestamp is not None and (not isinstance(timestamp, int) or timestamp > 10**11):
            return "timestamp", "must be a Unix timestamp in seconds"
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            return "attributes", "must be an object"
        if action != "identify":
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                return "name", "is required"
            ulid = item.get("id")
            if ulid is not None and (not isinstance(ulid, str) or not ULID.fullmatch(ulid)):
                return "id", "must be a valid ULID"
        return None

    def _apply(self, item: dict[str, Any]) -> tuple[str, str] | None:
        action = item["action"]
        if action == "merge":
            primary = _identifier(item["primary"])
            secondary = _identifier(item["secondary"])
            if primary not in self.people:
                return "primary", "the primary person must already exist"
            merged = self.people.pop(secondary, {}) if secondary else {}
            self.people[primary] = {**merged, **self.people[primary]}
            return None
        person = _identifier(item["identifiers"])
        assert person is not None
        profile = self.people.setdefault(person, {})
        if action == "identify":
            profile.update(item.get("attributes", {}))
            return None
        self._record(
            {
                "person": person,
                "type": action,
                "name": item["name"],
                "id": item.get("id"),
                "timestamp": item.get("timestamp"),
                "data": item.get("attributes", {}),
            },
            self.activities,
        )
        return None

    def _anonymous_event(self, body: Any) -> Reply:
        errors = []
        if not isinstance(body, dict):
            return Reply.json({"meta": {"errors": ["body must be an object"]}}, 400)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append("name is required")
        if body.get("type", "event") not in ("event", "page", "screen"):
            errors.append("type must be event, page or screen")
        ulid = body.get("id")
        if ulid is not None and (not isinstance(ulid, str) or not ULID.fullmatch(ulid)):
            errors.append("id must be a valid ULID")
        if not isinstance(body.get("data", {}), dict):
            errors.append("data must be an object")
        if errors:
            return Reply.json({"meta": {"errors": errors}}, 400)
        self._record(body, self.anonymous)
        return Reply.json({})

    def _record(self, activity: dict[str, Any], into: list[dict[str, Any]]) -> None:
        ulid = activity.get("id")
        if ulid is not None and ulid in self._seen_ids:
            self.duplicates += 1
            return
        if ulid is not None:
            self._seen_ids.add(ulid)
        into.append(activity)


def _identifier(value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) != 1:
        return None
    [(kind, ident)] = value.items()
    if kind not in ("id", "email", "cio_id") or not isinstance(ident, str) or not ident:
        return None
    return ident if kind == "id" else f"{kind}:{ident}"
