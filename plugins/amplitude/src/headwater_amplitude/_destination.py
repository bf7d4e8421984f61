"""The `amplitude` destination: batches to the HTTP V2 API, one outcome per event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import msgspec

from headwater_spec import (
    DELIVERED,
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
from ._responses import Resend, Verdict, verdicts
from ._transport import transport_retry

MAX_EVENTS_PER_REQUEST = 2000
"""HTTP V2 takes at most 2000 events per request (413 past that)."""

MAX_RESENDS = 2
"""Rounds of resending the events a 400/429 did not ingest, within one ``send``."""

Record = tuple[int, dict[str, Any]]


class AmplitudeDestination(Destination):
    """Sends events to one Amplitude project in its residency region.

    One ``httpx.AsyncClient`` per instance, created on first use and closed by ``close``.
    ``send`` never raises. When Amplitude refuses some events of a request it ingests none,
    so the others are resent at once (at most ``MAX_RESENDS`` rounds) instead of waiting
    for the router's backoff.
    """

    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.base_url = endpoint_url(self.spec, context)
        self._api_key = str(self.config["api_key"])
        min_id = self.config.get("min_id_length")
        self._options = {"min_id_length": int(min_id)} if min_id is not None else None
        self._timeout = float(self.config.get("timeout", 30))
        self._redact = SecretRedactor([self._api_key])
        self._client: httpx.AsyncClient | None = None

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        try:
            outcomes = await self._send(batch)
        except Exception as exc:
            reason = self._redact(f"amplitude destination failed: {type(exc).__name__}: {exc}")
            self.context.logger.error(reason)
            return [Retry(reason=reason)] * len(batch)
        log_outcomes(self.context.logger, self.spec.name, outcomes)
        return outcomes

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _send(self, batch: Sequence[Event]) -> list[Outcome]:
        plan = plan_batch(batch)
        outcomes: list[Outcome] = [DELIVERED] * len(batch)
        for index, rejected in plan.rejected.items():
            outcomes[index] = rejected
        for start in range(0, len(plan.events), MAX_EVENTS_PER_REQUEST):
            chunk = plan.events[start : start + MAX_EVENTS_PER_REQUEST]
            for index, outcome in await self._deliver(chunk, MAX_RESENDS):
                outcomes[index] = outcome
        return outcomes

    async def _deliver(self, chunk: list[Record], resends: int) -> list[tuple[int, Outcome]]:
        found = await self._post([body for _, body in chunk])
        if found is None:
            middle = len(chunk) // 2
            first = await self._deliver(chunk[:middle], resends)
            return first + await self._deliver(chunk[middle:], resends)
        done: list[tuple[int, Outcome]] = []
        again: list[Record] = []
        for record, verdict in zip(chunk, found, strict=True):
            if isinstance(verdict, Resend):
                again.append(record)
            else:
                done.append((record[0], verdict))
        if again and resends > 0:
            done.extend(await self._deliver(again, resends - 1))
        elif again:
            reason = "Amplitude did not ingest the event while refusing others of its request"
            done.extend((index, Retry(reason=reason)) for index, _ in again)
        return done

    async def _post(self, events: list[dict[str, Any]]) -> list[Verdict] | None:
        body: dict[str, Any] = {"api_key": self._api_key, "events": events}
        if self._options is not None:
            body["options"] = self._options
        try:
            response = await self._http().post(
                f"{self.base_url}/2/httpapi",
                content=msgspec.json.encode(body),
                headers={"Content-Type": "application/json", "Accept": "*/*"},
            )
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Amplitude /2/httpapi", self._timeout)
            return [Retry(reason=self._redact(retry.reason))] * len(events)
        return verdicts(response, events, self._redact)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                headers={"User-Agent": f"headwater-amplitude/{self.spec.version}"},
            )
        return self._client
