"""The webhook destination: one POST per batch.

The body is ``{"batch": [<event>, ...], "sentAt": "<ISO 8601 UTC>"}``, each event exactly
as the log stores it (Segment's JSON shape, unknown fields included): the same shape as
Segment's ``/v1/batch``, so a receiver written for that works. Events are at least once:
de-duplicate on ``messageId`` if it matters to you.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
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
    """aiohttp rather than httpx: measured on the delivery benchmark, one POST costs about
    a fifth of the CPU (its HTTP parser is in C), which is most of a webhook's cost."""

    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        endpoint = getattr(context, "endpoint", None)
        self.url: str = endpoint or self.config["url"]
        self.secret: str | None = self.config.get("secret")
        self.signature_header = self.config.get("signature_header", DEFAULT_SIGNATURE_HEADER)
        self.timeout = float(self.config.get("timeout", DEFAULT_TIMEOUT))
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": f"headwater-webhook/{self.spec.version}",
            **dict(self.config.get("headers", {})),
        }
        self._session: aiohttp.ClientSession | None = None
        self._encoder = msgspec.json.Encoder()
        self._redact = self.spec.redactor(self.config)  # the secret and header values

    def __repr__(self) -> str:
        shown = {
            "url": self.url,
            "secret": "***" if self.secret else None,
            "headers": sorted(self.config.get("headers", {})),
        }
        return f"{type(self).__name__}({self.context.instance_id!r}, {shown!r})"

    def _client(self) -> aiohttp.ClientSession:
        """One session per instance, made on first use (it binds to the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            )
        return self._session

    def body(self, batch: Sequence[Event]) -> bytes:
        """``{"batch": [...], "sentAt": "..."}``. An event without unknown fields is
        encoded straight from its Struct (the same JSON as ``event_to_dict`` gives, without
        building the dict first); one with unknown fields goes through ``event_to_dict``. One
        encoder call for the whole body."""
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        events = [event_to_dict(ev) if ev.extra else ev for ev in batch]
        return self._encoder.encode({"batch": events, "sentAt": sent_at})

    async def _post(self, body: bytes) -> tuple[int, bytes, str | None]:
        headers = {self.signature_header: sign(self.secret, body)} if self.secret else None
        async with self._client().post(
            self.url, data=body, headers=headers, allow_redirects=False
        ) as response:
            return response.status, await response.read(), response.headers.get("Retry-After")

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        try:
            status, content, retry_after = await self._post(self.body(batch))
        except TimeoutError:
            reason = f"no answer from the webhook within {self.timeout:g} s"
            return [Retry(reason=reason)] * len(batch)
        except (aiohttp.ClientError, OSError) as exc:
            return [Retry(reason=f"cannot reach the webhook: {type(exc).__name__}")] * len(batch)
        return outcomes_for(status, content, retry_after, len(batch), self._redact)

    async def check(self) -> CheckResult:
        """POST an empty batch (``{"batch": [], ...}``, signed like any other): a 2xx proves
        the URL is reachable and accepts batches."""
        try:
            status, _body, _ = await self._post(self.body([]))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return CheckResult(ok=False, message=f"cannot reach the webhook: {type(exc).__name__}")
        if 200 <= status < 300:
            return CheckResult(ok=True, message=f"the webhook answered {status}")
        return CheckResult(ok=False, message=f"the webhook is reachable but answered {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let the connector close its sockets
