"""The `amplitude` destination against the Headwater conformance suite (its loopback server
answers 2xx, 429, 5xx, 4xx, hangs, drops; a refused port stands for Amplitude being down)."""

from __future__ import annotations

from typing import Any

from headwater_amplitude import AmplitudeDestination
from headwater_spec.conformance import DestinationConformance, RecordedRequest, Reply


class TestAmplitudeConformance(DestinationConformance):
    connector = AmplitudeDestination

    def config(self) -> dict[str, Any]:
        return {"api_key": "conformance-amplitude-key", "timeout": 3}

    def ok_reply(self, request: RecordedRequest) -> Reply:
        count = len(request.json().get("events", []))
        return Reply.json(
            {
                "code": 200,
                "events_ingested": count,
                "payload_size_bytes": len(request.body),
                "server_upload_time": 1768471200000,
            }
        )

    def error_reply(self, status: int, request: RecordedRequest) -> Reply:
        return Reply.json({"code": status, "error": f"conformance suite says {status}"}, status)
