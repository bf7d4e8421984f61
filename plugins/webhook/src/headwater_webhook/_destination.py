"""The webhook destination: one POST per batch.

The body is ``{"batch": [<event>, ...], "sentAt": "<ISO 8601 UTC>"}``, each event exactly
as the log stores it (Segment's JSON shape, unknown fields included): the same shape as
Segment's ``/v1/batch``, so a receiver written for that works. Events are at least once:
de-duplicate on ``messageId`` if it matters to you.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec

from headwater_spec import (
    CheckResult,
    ConnectorContext,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
    Retry,
    event_to_dict,
)

from ._outcomes import outcomes_for
from ._signature import sign

DEFAULT_TIMEOUT = 10.0
DEFAULT_SIGNATURE_HEADER = "X-Headwater-Signature"
MAX_CONNECTIONS = 32


class WebhookDestination(Destination):
    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        endpoint = getattr(context, "endpoint", None)
        self.url: str = endpoint or self.config["url"]
        self.secret: str | None = self.config.get("secret")
        self.signature_header = self.config.get("signature_header", DEFAULT_SIGNATURE_HEADER)
        timeout = float(self.config.get("timeout", DEFAULT_TIMEOUT))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"headwater-webhook/{self.spec.version}",
            **dict(self.config.get("headers", {})),
        }
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            follow_redirects=False,
        )
        self._encoder = msgspec.json.Encoder()

    def __repr__(self) -> str:
        shown = {
            "url": self.url,
            "secret": "***" if self.secret else None,
            "headers": sorted(self.config.get("headers", {})),
        }
        return f"{type(self).__name__}({self.context.instance_id!r}, {shown!r})"

    def body(self, batch: Sequence[Event]) -> bytes:
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self._encoder.encode(
            {"batch": [event_to_dict(ev) for ev in batch], "sentAt": sent_at}
        )

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        body = self.body(batch)
        headers = {self.signature_header: sign(self.secret, body)} if self.secret else None
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return [Retry(reason=f"no answer from the webhook within {self._timeout():g} s")] * len(
                batch
            )
        except httpx.HTTPError as exc:
            return [Retry(reason=f"cannot reach the webhook: {type(exc).__name__}")] * len(batch)
        return outcomes_for(
            response.status_code, response.content, response.headers.get("retry-after"), len(batch)
        )

    def _timeout(self) -> float:
        return float(self.config.get("timeout", DEFAULT_TIMEOUT))

    async def check(self) -> CheckResult:
        """POST an empty batch (``{"batch": [], ...}``, signed like any other): a 2xx proves
        the URL is reachable and accepts batches."""
        body = self.body([])
        headers = {self.signature_header: sign(self.secret, body)} if self.secret else None
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return CheckResult(ok=False, message=f"cannot reach the webhook: {type(exc).__name__}")
        if response.is_success:
            return CheckResult(ok=True, message=f"the webhook answered {response.status_code}")
        return CheckResult(
            ok=False, message=f"the webhook is reachable but answered {response.status_code}"
        )

    async def close(self) -> None:
        await self._client.aclose()
