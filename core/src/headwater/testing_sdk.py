"""Send events the way an application does: through Segment's published Python SDK.

    with SegmentSdk(daemon.url, WRITE_KEY) as sdk:
        sent = sdk.sample_traffic()                   # messageId -> "track" | "identify"
        refused = sdk.track(user_id="u1", event="Step")
    # leaving the block flushes the SDK's queue and shuts it down

End-to-end tests use the real SDK (`segment-analytics-python`, a dev dependency, imported
only here) so what reaches the daemon is what applications send: batching, gzip, the
SDK's own messageIds and timestamps. The SDK uploads from a thread of its own; every
call here returns the messageId it gave the event, and leaving the block fails the test
when the SDK reported an upload error.
"""

from __future__ import annotations

import logging
from typing import Any


class SegmentSdk:
    """One SDK client pointed at a daemon's tracking API (``url``) with ``write_key``.

    ``options`` go to ``segment.analytics.Client`` (default ``max_retries=2``).
    """

    def __init__(self, url: str, write_key: str, **options: Any) -> None:
        self.url = url
        self.write_key = write_key
        self.options = {"max_retries": 2, **options}
        self.errors: list[Exception] = []
        self._client: Any = None
        """The ``segment.analytics.Client`` while in the block (the SDK ships no types)."""

    def __enter__(self) -> SegmentSdk:
        from segment.analytics import Client  # type: ignore[import-untyped]

        logging.getLogger("segment").setLevel(logging.CRITICAL)
        self._client = Client(
            self.write_key,
            host=self.url,
            on_error=lambda error, batch: self.errors.append(error),
            **self.options,
        )
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.flush()
            client.shutdown()
        if exc_type is None:
            assert not self.errors, f"the SDK reported upload errors: {self.errors[:3]}"

    def _send(self, method: str, fields: dict[str, Any]) -> str:
        if self._client is None:
            raise RuntimeError("use SegmentSdk in a `with` block")
        ok, message = getattr(self._client, method)(**fields)
        assert ok, f"the SDK refused to queue {method}({fields!r})"
        return str(message["messageId"])

    def track(self, **fields: Any) -> str:
        return self._send("track", fields)

    def identify(self, **fields: Any) -> str:
        return self._send("identify", fields)

    def page(self, **fields: Any) -> str:
        return self._send("page", fields)

    def screen(self, **fields: Any) -> str:
        return self._send("screen", fields)

    def group(self, **fields: Any) -> str:
        return self._send("group", fields)

    def alias(self, **fields: Any) -> str:
        return self._send("alias", fields)

    def sample_traffic(self, *, tracks: int = 12, users: int = 3) -> dict[str, str]:
        """``tracks`` `Step` tracks (``properties.n``) spread over users ``user-0``...,
        then one identify per user with the trait ``email`` ``u<n>@example.com``.

        Returns messageId -> "track" | "identify", for checking what a destination got.
        """
        sent: dict[str, str] = {}
        for n in range(tracks):
            user = f"user-{n % users}"
            sent[self.track(user_id=user, event="Step", properties={"n": n})] = "track"
        for n in range(users):
            traits = {"email": f"u{n}@example.com"}
            sent[self.identify(user_id=f"user-{n}", traits=traits)] = "identify"
        return sent
