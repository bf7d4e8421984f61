"""Throwaway connectors for the validation tests, registered like any plugin.

They cover the shapes validation cares about: a SaaS destination with US and EU endpoints
(and a real connectivity check over HTTP), one that serves the US only, one tied to no
region (`global`), a push source (its data is where the daemon is) and a pull source with
US and EU endpoints that emits identify events only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from headwater_spec import (
    CheckResult,
    ConnectorSpec,
    Destination,
    Register,
    Route,
    Source,
    hookimpl,
)

SAAS = {
    "name": "saas",
    "version": "1.0.0",
    "direction": "out",
    "regions": {
        "us": {"endpoint": "https://api.saas-demo.example"},
        "eu": {"endpoint": "https://api-eu.saas-demo.example"},
    },
    "default_region": "us",
    "config": {
        "type": "object",
        "additionalProperties": False,
        "required": ["api_key"],
        "properties": {
            "api_key": {"type": "string", "minLength": 16, "pattern": "^sk_", "secret": True},
            "retries": {"type": "integer", "minimum": 0, "maximum": 10},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0},
            "labels": {"type": "array", "items": {"type": "string", "maxLength": 8}},
        },
    },
    "delivery": {"max_batch": 500},
}

SAAS_US = {
    "name": "saas-us",
    "version": "1.0.0",
    "direction": "out",
    "regions": {"us": {"endpoint": "https://us.only-demo.example"}},
    "config": {
        "type": "object",
        "additionalProperties": False,
        "required": ["token"],
        "properties": {"token": {"type": "string", "secret": True}},
    },
}

RELAY = {
    "name": "relay",
    "version": "1.0.0",
    "direction": "out",
    "regions": {"global": {"endpoint": "https://relay-demo.example"}},
    "config": {
        "type": "object",
        "properties": {"channel": {"type": "string"}},
    },
}

COLLECTOR = {
    "name": "collector",
    "version": "1.0.0",
    "direction": "in",
    "regions": {"any": {}},
    "config": {
        "type": "object",
        "additionalProperties": False,
        "required": ["write_keys"],
        "properties": {
            "write_keys": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "secret": True,
            },
        },
    },
}

PULLER = {
    "name": "puller",
    "version": "1.0.0",
    "direction": "in",
    "regions": {
        "us": {"endpoint": "https://api.puller-demo.example"},
        "eu": {"endpoint": "https://eu.api.puller-demo.example"},
    },
    "default_region": "us",
    "event_types": ["identify"],
    "config": {
        "type": "object",
        "additionalProperties": False,
        "required": ["token"],
        "properties": {"token": {"type": "string", "secret": True}},
    },
}


class SaasDestination(Destination):
    spec = ConnectorSpec.from_dict(SAAS)

    async def check(self) -> CheckResult:
        base = self.context.endpoint or self.spec.endpoint_for(self.context.region)
        key = self.config["api_key"]
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.get(
                f"{base}/v1/check", headers={"Authorization": f"Bearer {key}"}
            )
        if response.status_code == 200:
            return CheckResult(ok=True, message="reachable")
        if response.status_code == 401:
            # Quotes the key on purpose: the validator must scrub it.
            return CheckResult(ok=False, message=f"the service refused API key {key}")
        raise RuntimeError(f"service answered {response.status_code} for key {key}")


class SaasUsDestination(Destination):
    spec = ConnectorSpec.from_dict(SAAS_US)


class RelayDestination(Destination):
    spec = ConnectorSpec.from_dict(RELAY)


class CollectorSource(Source):
    spec = ConnectorSpec.from_dict(COLLECTOR)

    def routes(self) -> Sequence[Route]:
        async def handler(request: Any) -> Any:
            return None

        return [("POST", "/collect", handler)]


class PullerSource(Source):
    spec = ConnectorSpec.from_dict(PULLER)


@hookimpl
def register_connectors(register: Register) -> None:
    for cls in (
        SaasDestination,
        SaasUsDestination,
        RelayDestination,
        CollectorSource,
        PullerSource,
    ):
        register(cls)
