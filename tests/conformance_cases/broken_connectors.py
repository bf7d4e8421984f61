"""Connectors that each break the contract in one known way, for the suite to catch.

`GoodDestination` does everything right; each other class breaks one thing. The conformance
run over them (tests/test_conformance_broken.py) must fail exactly the checks they break,
with messages that say what to fix.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from headwater_spec import (
    DELIVERED,
    ConnectorContext,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
    Rejected,
    Retry,
    Source,
    SourceContext,
    event_from_dict,
    event_to_dict,
)

SPEC: dict[str, Any] = {
    "name": "good",
    "version": "1.0.0",
    "direction": "out",
    "regions": {"us": {"endpoint": "https://api.example.com"}},
    "config": {
        "type": "object",
        "additionalProperties": False,
        "required": ["api_key"],
        "properties": {
            "api_key": {"type": "string", "secret": True},
            "timeout": {"type": "number"},
        },
    },
    "examples": {"valid": [{"api_key": "${KEY}"}], "invalid": [{}]},
}


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SPEC)
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


class GoodDestination(Destination):
    spec = ConnectorSpec.from_dict(SPEC)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.url = str(context.endpoint)
        self.timeout = float(self.config.get("timeout", 0.5))

    async def post(self, batch: Sequence[Event]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await client.post(
                self.url,
                json=[event_to_dict(e) for e in batch],
                headers={"Authorization": f"Bearer {self.config['api_key']}"},
            )

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        try:
            response = await self.post(batch)
        except httpx.HTTPError as exc:
            return [Retry(reason=type(exc).__name__)] * len(batch)
        return [self.outcome(response)] * len(batch)

    def outcome(self, response: httpx.Response) -> Outcome:
        if response.is_success:
            return DELIVERED
        if response.status_code == 429:
            after = response.headers.get("Retry-After")
            return Retry(reason="429", retry_after=float(after) if after else None)
        if response.status_code >= 500:
            return Retry(reason=str(response.status_code))
        return Rejected(reason=f"refused: {response.status_code}")


class NoDirectionDestination(GoodDestination):
    spec = spec(name="no-direction", direction=None)  # type: ignore[assignment]


class SloppySpecDestination(GoodDestination):
    """Valid against the meta-schema, but an unmarked token, a region without endpoint and
    an "invalid" example the schema accepts."""

    spec = ConnectorSpec.from_dict(
        spec(
            name="sloppy",
            regions={"us": {"endpoint": "https://api.example.com"}, "eu": {}},
            config={
                "type": "object",
                "properties": {
                    "api_key": {"type": "string", "secret": True},
                    "api_token": {"type": "string"},
                },
            },
            examples={"valid": [{"api_key": "${KEY}"}], "invalid": [{"api_key": "${KEY}"}]},
        )
    )


class RaisingDestination(GoodDestination):
    spec = ConnectorSpec.from_dict(spec(name="raising"))

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        response = await self.post(batch)
        response.raise_for_status()
        return [DELIVERED] * len(batch)


class LeakyDestination(GoodDestination):
    spec = ConnectorSpec.from_dict(spec(name="leaky"))

    def __repr__(self) -> str:
        return f"LeakyDestination({self.config})"

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        self.context.logger.debug(
            "sending %d events with key %s", len(batch), self.config["api_key"]
        )
        outcomes = await super().send(batch)
        key = self.config["api_key"]
        return [
            Rejected(f"{o.reason} (key {key})") if isinstance(o, Rejected) else o for o in outcomes
        ]


HEADERS_SPEC = spec(name="header-leaky")
HEADERS_SPEC["config"]["properties"]["headers"] = {
    "type": "object",
    "additionalProperties": {"type": "string", "secret": True},
}


class HeaderLeakyDestination(GoodDestination):
    """Its header values are marked secret (names visible); it logs them whole, and an
    override of __repr__ shows the config as it is."""

    spec = ConnectorSpec.from_dict(HEADERS_SPEC)

    def __repr__(self) -> str:
        return f"HeaderLeakyDestination({self.config})"

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        self.context.logger.info("sending with headers %s", self.config.get("headers"))
        return await super().send(batch)


class CarelessDestination(GoodDestination):
    """Retries a 400 forever and ignores Retry-After."""

    spec = ConnectorSpec.from_dict(spec(name="careless"))

    def outcome(self, response: httpx.Response) -> Outcome:
        return DELIVERED if response.is_success else Retry(reason=str(response.status_code))


UPSTREAM: list[dict[str, Any]] = []
"""The records the sources below read: the test's stand-in for a service."""

SOURCE_SPEC = spec(
    name="records",
    direction="in",
    regions={"any": {}},
    config={"type": "object", "properties": {}},
    examples={"valid": [{}], "invalid": [{"unknown": 1}]},
    event_types=["track"],
)
SOURCE_SPEC["config"]["additionalProperties"] = False


class CheckpointingSource(Source):
    """Reads UPSTREAM from its checkpoint; emits and checkpoints in one step."""

    spec = ConnectorSpec.from_dict(SOURCE_SPEC)

    async def run(self, ctx: SourceContext) -> None:
        import asyncio

        position = int(await ctx.load_checkpoint() or b"0")
        while True:
            if position < len(UPSTREAM):
                record = UPSTREAM[position]
                event = event_from_dict(
                    {"type": "track", "event": "Row", "userId": "u", "messageId": record["id"]}
                )
                position += 1
                await self.store(ctx, [event], position)
            await asyncio.sleep(0.01)

    async def store(self, ctx: SourceContext, events: list[Event], position: int) -> None:
        await ctx.emit_and_checkpoint(events, str(position).encode())


class ForgetfulSource(CheckpointingSource):
    """Emits, then saves the checkpoint in a second step: a crash between them repeats."""

    spec = ConnectorSpec.from_dict({**SOURCE_SPEC, "name": "forgetful"})

    async def store(self, ctx: SourceContext, events: list[Event], position: int) -> None:
        await ctx.emit(events)
        await ctx.save_checkpoint(str(position).encode())


class AmnesiacSource(CheckpointingSource):
    """Never saves a checkpoint: every restart reads everything again."""

    spec = ConnectorSpec.from_dict({**SOURCE_SPEC, "name": "amnesiac"})

    async def store(self, ctx: SourceContext, events: list[Event], position: int) -> None:
        await ctx.emit(events)
