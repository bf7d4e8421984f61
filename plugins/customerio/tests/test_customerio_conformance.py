"""The `customerio` destination against the Headwater conformance suite (its loopback server
answers 2xx, 429, 5xx, 4xx, hangs, drops; a refused port stands for Customer.io being down)."""

from __future__ import annotations

from typing import Any

from headwater_customerio import CustomerIODestination
from headwater_spec.conformance import DestinationConformance, RecordedRequest, Reply


class TestCustomerIOConformance(DestinationConformance):
    connector = CustomerIODestination
    sends_message_id = False
    """Customer.io de-duplicates on `id`, which must be a ULID: the destination derives it
    from the messageId (tests/test_customerio_delivery.py checks it is stable)."""

    def config(self) -> dict[str, Any]:
        return {"site_id": "conformance-site", "api_key": "conformance-cio-key", "timeout": 3}

    def ok_reply(self, request: RecordedRequest) -> Reply:
        if request.path == "/api/v1/accounts/region":
            return Reply.json({"url": "https://track.customer.io", "region": "us"})
        return Reply.json({})

    def error_reply(self, status: int, request: RecordedRequest) -> Reply:
        error = {"reason": "conformance", "message": f"conformance suite says {status}"}
        return Reply.json({"errors": [error]}, status)
