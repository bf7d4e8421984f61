"""The `mixpanel` destination: batches to /import and /engage, one outcome per event."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import msgspec

from headwater_spec import (
    DELIVERED,
    ConnectorContext,
    ConnectorSpec,
    Delivered,
    Destination,
    Event,
    Outcome,
    Rejected,
    Retry,
    SecretRedactor,
    endpoint_url,
    log_outcomes,
)

from ._records import plan_batch
from ._responses import engage_outcomes, import_outcomes
from ._transport import transport_retry

MAX_RECORDS_PER_REQUEST = 2000
"""Both /import and /engage take at most 2000 records per request."""

Record = tuple[int, dict[str, Any]]
Post = Callable[[list[dict[str, Any]]], Awaitable[list[Outcome] | None]]


class MixpanelDestination(Destination):
    """Sends events to one Mixpanel project in its residency region.

    One ``httpx.AsyncClient`` per instance, created on first use (inside the daemon's event
    loop) and closed by ``close``. ``send`` never raises: every failure becomes a ``Retry``
    or a ``Rejected`` for the events it concerns.
    """

    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.base_url = endpoint_url(self.spec, context)
        self._token = str(self.config["project_token"])
        user = self.config.get("service_account_username")
        secret = self.config.get("service_account_secret")
        project_id = self.config.get("project_id")
        self._project_id = str(project_id) if project_id is not None else None
        self._import_auth = (
            httpx.BasicAuth(str(user), str(secret)) if user else httpx.BasicAuth(self._token, "")
        )
        self._gzip = bool(self.config.get("gzip", True))
        self._timeout = float(self.config.get("timeout", 30))
        self._redact = SecretRedactor([self._token, secret])
        self._client: httpx.AsyncClient | None = None

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        try:
            outcomes = await self._send(batch)
        except Exception as exc:
            reason = self._redact(f"mixpanel destination failed: {type(exc).__name__}: {exc}")
            self.context.logger.error(reason)
            return [Retry(reason=reason)] * len(batch)
        log_outcomes(self.context.logger, self.spec.name, outcomes)
        return outcomes

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _send(self, batch: Sequence[Event]) -> list[Outcome]:
        plan = plan_batch(batch, self._token)
        outcomes: list[Outcome] = [DELIVERED] * len(batch)
        for index, rejected in plan.rejected.items():
            outcomes[index] = rejected
        parts = await asyncio.gather(
            self._deliver(plan.imports, self._post_import),
            self._deliver(plan.engages, self._post_engage),
        )
        for part in parts:
            for index, outcome in part:
                outcomes[index] = _worst(outcomes[index], outcome)
        return outcomes

    async def _deliver(self, records: list[Record], post: Post) -> list[tuple[int, Outcome]]:
        results: list[tuple[int, Outcome]] = []
        for start in range(0, len(records), MAX_RECORDS_PER_REQUEST):
            chunk = records[start : start + MAX_RECORDS_PER_REQUEST]
            results.extend(await self._deliver_chunk(chunk, post))
        return results

    async def _deliver_chunk(self, chunk: list[Record], post: Post) -> list[tuple[int, Outcome]]:
        """Send ``chunk``; when Mixpanel asks for smaller requests, send each half."""
        outcomes = await post([body for _, body in chunk])
        if outcomes is None:
            middle = len(chunk) // 2
            first = await self._deliver_chunk(chunk[:middle], post)
            return first + await self._deliver_chunk(chunk[middle:], post)
        return [(index, outcome) for (index, _), outcome in zip(chunk, outcomes, strict=True)]

    async def _post_import(self, bodies: list[dict[str, Any]]) -> list[Outcome] | None:
        content = msgspec.json.encode(bodies)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._gzip:
            content = gzip.compress(content, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"strict": "1"}
        if self._project_id is not None:
            params["project_id"] = self._project_id
        try:
            response = await self._http().post(
                f"{self.base_url}/import",
                content=content,
                headers=headers,
                params=params,
                auth=self._import_auth,
            )
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Mixpanel /import", self._timeout)
            return [Retry(reason=self._redact(retry.reason))] * len(bodies)
        return import_outcomes(response, len(bodies), self._redact)

    async def _post_engage(self, bodies: list[dict[str, Any]]) -> list[Outcome] | None:
        try:
            response = await self._http().post(
                f"{self.base_url}/engage",
                content=msgspec.json.encode(bodies),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                params={"verbose": "1"},
            )
        except httpx.HTTPError as exc:
            retry = transport_retry(exc, "Mixpanel /engage", self._timeout)
            return [Retry(reason=self._redact(retry.reason))] * len(bodies)
        return engage_outcomes(response, len(bodies), self._redact)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                headers={"User-Agent": f"headwater-mixpanel/{self.spec.version}"},
            )
        return self._client


_RANK = {Delivered: 0, Retry: 1, Rejected: 2}


def _worst(a: Outcome, b: Outcome) -> Outcome:
    """An event sent as two records (identify) is only as delivered as its worse half."""
    if isinstance(a, Retry) and isinstance(b, Retry):
        waits = [w for w in (a.retry_after, b.retry_after) if w is not None]
        return Retry(reason=a.reason, retry_after=max(waits) if waits else None)
    return a if _RANK[type(a)] >= _RANK[type(b)] else b
