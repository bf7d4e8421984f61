"""Fixtures for the router tests: a real LMDB log in a temp dir and scriptable destinations.

The destinations here are in-process `Destination` subclasses whose ``send`` returns what
the test scripts (delivered, retry, rejected, or hang), so each router behaviour can be
pinned without a network; the HTTP path is covered by the webhook tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from headwater.log import LmdbLog
from headwater.router import (
    BatchLimits,
    DeliverySettings,
    DestinationLoop,
    EventFilter,
    InstanceContext,
    RetryPolicy,
)
from headwater_spec import (
    DELIVERED,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
)

TEST_SPEC = ConnectorSpec.from_dict(
    {
        "name": "recorder",
        "version": "0.0.1",
        "title": "Recorder",
        "direction": "out",
        "regions": {"any": {}},
        "config": {"type": "object"},
        "delivery": {"max_batch": 50},
    }
)

Behaviour = Callable[[Sequence[Event]], Awaitable[list[Outcome]] | list[Outcome]]


class Recorder(Destination):
    """Records every batch it is sent; answers with ``behaviour`` (default: delivered)."""

    spec = TEST_SPEC

    def __init__(self, behaviour: Behaviour | None = None, name: str = "rec") -> None:
        super().__init__({}, InstanceContext(name, "any", Path(".")))
        self.behaviour = behaviour
        self.batches: list[list[Event]] = []
        self.times: list[float] = []
        self.delivered: list[Event] = []

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        self.batches.append(list(batch))
        self.times.append(time.monotonic())
        if self.behaviour is None:
            outcomes: list[Outcome] = [DELIVERED] * len(batch)
        else:
            result = self.behaviour(batch)
            outcomes = await result if isinstance(result, Awaitable) else result
        self.delivered += [ev for ev, o in zip(batch, outcomes, strict=True) if o == DELIVERED]
        return outcomes

    def delivered_ids(self) -> list[str]:
        return [str(ev.messageId) for ev in self.delivered]


FAST = RetryPolicy(base=0.01, cap=0.05, max_attempts=50, max_age=3600)


def settings(**kw: Any) -> DeliverySettings:
    base: dict[str, Any] = {
        "limits": BatchLimits(max_count=10, linger=0.0),
        "concurrency": 3,
        "policy": FAST,
        "start": "beginning",
        "poll_interval": 0.05,
        "redrive_interval": 0.05,
    }
    base.update(kw)
    return DeliverySettings(**base)


def track(i: int, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "E", "userId": user, "messageId": f"m{i}", **extra}


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    lg = LmdbLog(tmp_path, sync=False)
    try:
        yield lg
    finally:
        lg.close()


def make_loop(
    log: LmdbLog,
    dest: Destination,
    name: str = "rec",
    event_filter: EventFilter | None = None,
    **kw: Any,
) -> DestinationLoop:
    return DestinationLoop(
        log,
        name,
        dest,
        connector_name="recorder",
        event_filter=event_filter,
        settings=settings(**kw),
    )


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def settle(loop: DestinationLoop) -> None:
    """Wait until everything read is finished and saved."""
    state = loop.state
    assert state is not None
    await wait_until(lambda: state.cursor == loop.log.last_seq() + 1 and loop.in_flight == 0)
    await state.flush()
