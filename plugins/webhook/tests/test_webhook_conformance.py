"""The `webhook` destination against the Headwater conformance suite (a real loopback server
answering 2xx, 429, 5xx, 4xx, hanging, dropping; a refused port)."""

from __future__ import annotations

from typing import Any

from headwater_spec.conformance import DestinationConformance
from headwater_webhook import WebhookDestination


class TestWebhookConformance(DestinationConformance):
    connector = WebhookDestination

    def config(self) -> dict[str, Any]:
        return {
            "url": "http://127.0.0.1:9/unused",
            "secret": "conformance-signing-secret",
            "headers": {"Authorization": "Bearer conformance-token-123"},
            "timeout": 3,
        }

    def server_config(self, url: str) -> dict[str, Any]:
        return {**self.config(), "url": f"{url}/hook"}
