"""Requests that may meet a NATS cluster between leaders, and are safe to send again.

While a node is down or a stream's leader is being elected (seconds), JetStream answers
"no responders" or 503, or not at all. Reads and idempotent writes (a KV put, creating a
stream that may exist) are sent again with a growing pause until ``deadline`` seconds have
passed; then the caller gets a LogError naming the servers to check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._errors import LogClosedError, LogUnavailableError

T = TypeVar("T")


def transient_errors() -> tuple[type[Exception], ...]:
    from nats import errors as nats_errors
    from nats.js import errors as js_errors

    return (
        nats_errors.TimeoutError,
        nats_errors.NoRespondersError,
        nats_errors.ConnectionReconnectingError,
        nats_errors.OutboundBufferLimitError,
        js_errors.ServiceUnavailableError,
        js_errors.NoStreamResponseError,
        asyncio.TimeoutError,
    )


class Retrier:
    def __init__(self, deadline: float, servers: str) -> None:
        self.deadline = deadline
        self.servers = servers
        self._transient = transient_errors()

    async def __call__(self, op: Callable[[], Awaitable[T]], what: str) -> T:
        from nats.errors import ConnectionClosedError

        give_up = time.monotonic() + self.deadline
        delay = 0.05
        while True:
            try:
                return await op()
            except ConnectionClosedError:
                raise LogClosedError("the NATS connection of the log is closed") from None
            except self._transient as exc:
                if time.monotonic() + delay > give_up:
                    raise LogUnavailableError(
                        f"{what}: JetStream did not answer within {self.deadline:.0f} s "
                        f"({type(exc).__name__}); check that a quorum of {self.servers} is up"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
