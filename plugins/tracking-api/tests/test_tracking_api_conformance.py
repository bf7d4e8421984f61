"""The `tracking-api` source against the Headwater conformance suite (push source: the
suite calls its route handlers with the requests below, as the daemon's server would)."""

from __future__ import annotations

import base64
import json
from typing import Any

from headwater_spec import HttpRequest
from headwater_spec.conformance import SourceConformance
from headwater_tracking_api import TrackingApiSource

WRITE_KEY = "hw-conformance-write-key"


class TestTrackingApiConformance(SourceConformance):
    connector = TrackingApiSource

    def config(self) -> dict[str, Any]:
        return {"write_keys": [WRITE_KEY]}

    def push_requests(self, count: int) -> list[HttpRequest]:
        """One /v1/track request with Basic auth, the rest in one /v1/batch with Bearer."""
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        track = {"userId": "user-1", "event": "Signed Up", "messageId": "conf-0"}
        requests = [
            HttpRequest(
                method="POST",
                path="/v1/track",
                headers={"authorization": f"Basic {auth}", "content-type": "application/json"},
                body=json.dumps(track).encode(),
            )
        ]
        if count > 1:
            batch = [
                {"type": "identify", "userId": f"user-{n}", "messageId": f"conf-{n}"}
                for n in range(1, count)
            ]
            requests.append(
                HttpRequest(
                    method="POST",
                    path="/v1/batch",
                    headers={
                        "authorization": f"Bearer {WRITE_KEY}",
                        "content-type": "application/json",
                    },
                    body=json.dumps({"batch": batch}).encode(),
                )
            )
        return requests
