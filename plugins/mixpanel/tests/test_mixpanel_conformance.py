"""The `mixpanel` destination against the Headwater conformance suite (its loopback server
answers 2xx, 429, 5xx, 4xx, hangs, drops; a refused port stands for Mixpanel being down)."""

from __future__ import annotations

import json
from typing import Any

from headwater_mixpanel import MixpanelDestination
from headwater_spec.conformance import DestinationConformance, RecordedRequest, Reply


class TestMixpanelConformance(DestinationConformance):
    connector = MixpanelDestination

    def config(self) -> dict[str, Any]:
        return {
            "project_token": "conformance-project-token",
            "service_account_username": "conformance.sa",
            "service_account_secret": "conformance-sa-secret",
            "project_id": "2195193",
            "timeout": 3,
        }

    def ok_reply(self, request: RecordedRequest) -> Reply:
        if request.path == "/engage":
            return Reply.json({"status": 1, "error": None})
        records = request.json()
        count = len(records) if isinstance(records, list) else 0
        return Reply.json({"code": 200, "num_records_imported": count, "status": "OK"})

    def error_reply(self, status: int, request: RecordedRequest) -> Reply:
        body = {"code": status, "error": f"conformance suite says {status}", "status": "Error"}
        return Reply(status, json.dumps(body).encode())
