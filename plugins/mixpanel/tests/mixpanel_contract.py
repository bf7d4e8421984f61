"""A local stand-in for Mixpanel's ingestion API that enforces its documented contract.

Mixpanel cannot be reached from the test machines, so this server plays it on loopback.
It checks what the docs require of a client and answers as the docs say Mixpanel answers:

- POST /import (docs.mixpanel.com/reference/import-events): HTTP Basic auth with the project
  token as user and an empty password, or a service account with ``project_id`` in the
  query; ``Content-Type: application/json`` (or ``application/x-ndjson``); optional
  ``Content-Encoding: gzip``; at most 2000 records and 10 MB uncompressed (413 past that);
  each record ``{"event": str, "properties": {...}}`` with ``time`` (seconds or
  milliseconds, 1971-01-01 to one hour ahead), ``distinct_id`` (not a placeholder such as
  "null"), ``$insert_id`` (at most 36 of [A-Za-z0-9-]). With ``strict=1`` invalid records
  come back in a 400 whose ``failed_records`` carry their ``index``, and the valid ones are
  ingested anyway (troubleshooting/errors/400-bad-request).
- POST /engage (reference/profile-set): a JSON array of at most 2000 updates with
  ``$token``, ``$distinct_id`` and one operation; no gzip; answers 200 even when an update is
  invalid, with ``{"status": 0, "error": ...}`` under ``verbose=1``.

A request the connector should never build (wrong method, path, content type, no
``strict=1``, a body of the wrong shape) is a *violation*: it is answered 400 and recorded,
and the test fixture fails the test on any violation it did not expect.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from headwater_mixpanel import MixpanelDestination
from headwater_spec.conformance import ContractServer, RecordedRequest, Reply

TOKEN = "tok-0123456789abcdef"
MAX_RECORDS = 2000
MAX_IMPORT_BYTES = 10 * 1024 * 1024
PLACEHOLDER_IDS = {
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "lmy47d",
    "[]",
    "{}",
}
INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
EPOCH_1971 = 31536000
ENGAGE_OPERATIONS = {
    "$set",
    "$set_once",
    "$add",
    "$union",
    "$append",
    "$remove",
    "$unset",
    "$delete",
}


Make = Callable[..., MixpanelDestination]
"""The ``make_destination`` fixture: (region, endpoint="server", **config) -> destination."""


class MixpanelAPI(ContractServer):
    """Mixpanel's /import and /engage for one project."""

    service = "Mixpanel"

    def __init__(
        self,
        *,
        token: str = TOKEN,
        service_account: tuple[str, str] | None = None,
        project_id: str = "2195193",
    ) -> None:
        super().__init__()
        self.token = token
        self.service_account = service_account
        self.project_id = project_id
        self.max_import_bytes = MAX_IMPORT_BYTES
        self.events: list[dict[str, Any]] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.echo_secrets_in_errors = False

    def answer(self, request: RecordedRequest) -> Reply:
        if request.path == "/import":
            return self._import(request)
        if request.path == "/engage":
            return self._engage(request)
        return self.violation(f"{request.method} {request.path}: no such Mixpanel endpoint")

    def _unauthorized(self, message: str) -> Reply:
        if self.echo_secrets_in_errors:
            message = f"{message} (token {self.token})"
        return Reply.json({"code": 401, "error": message, "status": "Unauthorized"}, 401)

    def _import(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return self.violation(f"/import needs POST, got {request.method}")
        if request.params().get("strict") != "1":
            return self.violation("/import without strict=1 drops invalid events silently")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype not in ("application/json", "application/x-ndjson"):
            return self.violation(f"/import Content-Type {ctype!r}")
        creds = request.basic_auth()
        if creds is None:
            return self._unauthorized("missing Basic auth")
        if self.service_account is not None and creds == self.service_account:
            if request.params().get("project_id") != self.project_id:
                return self._unauthorized("service account auth needs project_id")
        elif creds != (self.token, ""):
            return self._unauthorized("invalid project token or service account")
        if len(request.body) > self.max_import_bytes:
            return Reply.json(
                {
                    "code": 413,
                    "error": f"request exceeds max limit of {self.max_import_bytes} bytes",
                    "status": "Request Entity Too Large",
                },
                413,
            )
        try:
            if ctype == "application/x-ndjson":
                records = [json.loads(line) for line in request.body.splitlines() if line.strip()]
            else:
                records = request.json()
        except ValueError:
            return self.violation("/import body is not JSON")
        if not isinstance(records, list):
            return self.violation("/import body must be an array of events")
        if len(records) > MAX_RECORDS:
            return self.violation(f"/import takes at most {MAX_RECORDS} events, got {len(records)}")
        failed = []
        accepted = []
        for index, record in enumerate(records):
            problem = self._check_record(record)
            if problem is None:
                accepted.append(record)
                continue
            field_name, message = problem
            props = record.get("properties") if isinstance(record, dict) else None
            failed.append(
                {
                    "index": index,
                    "insert_id": props.get("$insert_id", "") if isinstance(props, dict) else "",
                    "field": field_name,
                    "message": message,
                }
            )
        self.events.extend(accepted)
        if failed:
            return Reply.json(
                {
                    "code": 400,
                    "error": "some data points in the request failed validation",
                    "status": "Bad Request",
                    "num_records_imported": len(accepted),
                    "failed_records": failed,
                },
                400,
            )
        return Reply.json({"code": 200, "num_records_imported": len(accepted), "status": "OK"})

    def _check_record(self, record: Any) -> tuple[str, str] | None:
        if not isinstance(record, dict):
            return "", "each event must be an object"
        name = record.get("event")
        if not isinstance(name, str) or not name:
            return "event", "'event' must be a non-empty string"
        props = record.get("properties")
        if not isinstance(props, dict):
            return "properties", "'properties' must be an object"
        when = props.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool):
            return "properties.time", "'properties.time' is required, seconds or ms since epoch"
        seconds = when / 1000 if when > 1e11 else when
        if seconds < EPOCH_1971:
            return "properties.time", "'properties.time' is invalid: before 1971-01-01"
        if seconds > time.time() + 3600:
            return "properties.time", "'properties.time' is invalid: more than 1h in the future"
        distinct = props.get("distinct_id")
        if not isinstance(distinct, str):
            return "properties.distinct_id", "'properties.distinct_id' must be a string"
        if distinct.lower() in PLACEHOLDER_IDS:
            return "properties.distinct_id", f"'properties.distinct_id' is invalid: {distinct!r}"
        insert = props.get("$insert_id")
        if not isinstance(insert, str) or not INSERT_ID.fullmatch(insert):
            return "properties.$insert_id", "'$insert_id' must be 1-36 of [A-Za-z0-9-]"
        token = props.get("token")
        if token is not None and token != self.token:
            return "properties.token", "'token' does not match the project"
        return None

    def _engage(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return self.violation(f"/engage needs POST, got {request.method}")
        if "content-encoding" in request.headers:
            return self.violation("/engage does not support gzip encoding")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/json":
            return self.violation(f"/engage Content-Type {ctype!r}")
        try:
            updates = request.json()
        except ValueError:
            return self.violation("/engage body is not JSON")
        if not isinstance(updates, list) or not updates:
            return self.violation("/engage body must be a non-empty array of updates")
        if len(updates) > MAX_RECORDS:
            return self.violation(f"/engage takes at most {MAX_RECORDS} updates")
        for update in updates:
            error = self._check_update(update)
            if error is not None:
                if request.params().get("verbose") == "1":
                    return Reply.json({"status": 0, "error": error})
                return Reply(200, b"0", (("Content-Type", "text/plain"),))
        for update in updates:
            profile = self.profiles.setdefault(update["$distinct_id"], {})
            profile.update(update.get("$set", {}))
        if request.params().get("verbose") == "1":
            return Reply.json({"status": 1, "error": None})
        return Reply(200, b"1", (("Content-Type", "text/plain"),))

    def _check_update(self, update: Any) -> str | None:
        if not isinstance(update, dict):
            return "each update must be an object"
        if update.get("$token") != self.token:
            return "$token is missing or not this project's token"
        distinct = update.get("$distinct_id")
        if not isinstance(distinct, str) or not distinct:
            return "$distinct_id must be a non-empty string"
        operations = ENGAGE_OPERATIONS & set(update)
        if len(operations) != 1:
            return f"an update needs exactly one operation, got {sorted(operations)}"
        if "$set" in update:
            values = update["$set"]
            if not isinstance(values, dict):
                return "$set must be an object"
            if len(values) >= 255:
                return "profile updates must have fewer than 255 properties"
        return None
