"""The `customerio` destination: the Track API per region, one outcome per event."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import msgspec

from headwater_spec import (
    DELIVERED,
    CheckResult,
    ConnectorContext,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
    Retry,
    SecretRedactor,
    endpoint_url,
    log_outcomes,
)

from ._records import plan_batch
from ._responses import batch_outcomes, event_outcome
from ._transport import transport_retry

MAX_BATCH_BYTES = 500 * 1000
"""Customer.io: "Your batch request must be smaller than 500kb"."""

ANONYMOUS_CONCURRENCY = 8
"""Parallel /api/v1/events requests (one per anonymous event) within a ``send``."""

Record = tuple[int, dict[str, Any]]


class CustomerIODestination(Destination):
    """Sends people and their activity to one Customer.io workspace in its region.

    One ``httpx.AsyncClient`` per instance (Basic auth: Site ID and Track API key), created
    on first use and closed by ``close``. ``send`` never raises. Anonymous events of one
    anonymousId are sent one after the other, so Customer.io sees them in log order.
    """

    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.base_url = endpoint_url(self.spec, context)
        self._auth = httpx.BasicAuth(str(self.config["site_id"]), str(self.config["api_key"]))
        self._timeout = float(self.config.get("timeout", 30))
        self._redact = SecretRedactor([self.config["api_key"]])
        self._client: httpx.AsyncClient | None = None

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        try:
            outcomes = await self._send(batch)
        except Exception as exc:
            reason = self._redact(f"customerio destination failed: {type(exc).__name__}: {exc}")
            self.context.logger.error(reason)
            return [Retry(reason=reason)] * len(batch)
        log_outcomes(self.context.logger, self.spec.name, outcomes)
        return outcomes

    async def check(self) -> CheckResult:
        """Ask Customer.io which region the credentials belong to (GET /api/v1/accounts/region)."""
        try:
            response = await self._http().get(f"{self.base_url}/api/v1/accounts/region")
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Customer.io /api/v1/accounts/region", self._timeout)
            return CheckResult(ok=False, message=self._redact(retry.reason))
        if response.status_code in (401, 403):
            return CheckResult(
                ok=False,
                message=f"Customer.io refused the site_id/api_key (HTTP {response.status_code})",
            )
        if response.status_code != 200:
            return CheckResult(
                ok=False, message=f"Customer.io answered HTTP {response.status_code}"
            )
        try:
            region = str(msgspec.json.decode(response.content).get("region", "")).lower()
        except (msgspec.DecodeError, AttributeError):
            return CheckResult(ok=False, message="Customer.io's region answer is not JSON")
        if region and region != self.context.region:
            return CheckResult(
                ok=False,
                message=f"the credentials belong to a workspace in region {region!r}, not "
                f'{self.context.region!r}; set `region = "{region}"`',
            )
        return CheckResult(ok=True, message=f"credentials accepted; workspace region {region!r}")

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _send(self, batch: Sequence[Event]) -> list[Outcome]:
        plan = plan_batch(batch)
        outcomes: list[Outcome] = [DELIVERED] * len(batch)
        for index, rejected in plan.rejected.items():
            outcomes[index] = rejected
        parts = await asyncio.gather(
            self._deliver_items(plan.items), self._deliver_anonymous(plan.anonymous)
        )
        for part in parts:
            for index, outcome in part:
                outcomes[index] = outcome
        return outcomes

    async def _deliver_items(self, items: list[Record]) -> list[tuple[int, Outcome]]:
        results: list[tuple[int, Outcome]] = []
        for chunk in _by_size(items, MAX_BATCH_BYTES):
            results.extend(await self._deliver_chunk(chunk))
        return results

    async def _deliver_chunk(self, chunk: list[Record]) -> list[tuple[int, Outcome]]:
        body = msgspec.json.encode({"batch": [item for _, item in chunk]})
        try:
            response = await self._http().post(
                f"{self.base_url}/api/v2/batch",
                content=body,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Customer.io /api/v2/batch", self._timeout)
            return [(index, Retry(reason=self._redact(retry.reason))) for index, _ in chunk]
        found = batch_outcomes(response, len(chunk), self._redact)
        if found is None:
            middle = len(chunk) // 2
            first = await self._deliver_chunk(chunk[:middle])
            return first + await self._deliver_chunk(chunk[middle:])
        return [(index, outcome) for (index, _), outcome in zip(chunk, found, strict=True)]

    async def _deliver_anonymous(self, events: list[Record]) -> list[tuple[int, Outcome]]:
        by_person: dict[str, list[Record]] = {}
        for record in events:
            by_person.setdefault(record[1]["anonymous_id"], []).append(record)
        gate = asyncio.Semaphore(ANONYMOUS_CONCURRENCY)

        async def in_order(records: list[Record]) -> list[tuple[int, Outcome]]:
            async with gate:
                return [(index, await self._post_event(body)) for index, body in records]

        parts = await asyncio.gather(*(in_order(r) for r in by_person.values()))
        return [pair for part in parts for pair in part]

    async def _post_event(self, body: dict[str, Any]) -> Outcome:
        try:
            response = await self._http().post(
                f"{self.base_url}/api/v1/events",
                content=msgspec.json.encode(body),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Customer.io /api/v1/events", self._timeout)
            return Retry(reason=self._redact(retry.reason))
        return event_outcome(response, self._redact)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=self._auth,
                timeout=httpx.Timeout(self._timeout),
                headers={"User-Agent": f"headwater-customerio/{self.spec.version}"},
            )
        return self._client


def _by_size(items: list[Record], limit: int) -> list[list[Record]]:
    """Consecutive chunks whose ``{"batch": [...]}`` body stays under ``limit`` bytes."""
    chunks: list[list[Record]] = []
    current: list[Record] = []
    size = len(b'{"batch":[]}')
    for record in items:
        item_size = len(msgspec.json.encode(record[1])) + 1
        if current and size + item_size > limit:
            chunks.append(current)
            current, size = [], len(b'{"batch":[]}')
        current.append(record)
        size += item_size
    if current:
        chunks.append(current)
    return chunks
