"""Fixtures for the replay and retention tests: a real LMDB log in a temp dir and an
in-process destination whose answers the test scripts (the HTTP path is covered end to
end in tests/test_replay_*.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from headwater.log import LmdbLog
from headwater.replay import ReplayFilter, ReplayJob, ReplayRun
from headwater.router import (
    BatchLimits,
    DeliverySettings,
    EventFilter,
    InstanceContext,
    RetryPolicy,
)
from headwater_spec import DELIVERED, ConnectorSpec, Destination, Event, Outcome

SPEC = ConnectorSpec.from_dict(
    {
        "name": "recorder",
        "version": "0.0.1",
        "direction": "out",
        "regions": {"any": {}},
        "config": {"type": "object"},
        "delivery": {"max_batch": 50},
    }
)
FAST = RetryPolicy(base=0.01, cap=0.05, max_attempts=5, max_age=3600)


class Recorder(Destination):
    """Records every event it accepts, in arrival order; ``answer`` decides per event."""

    spec = SPEC

    def __init__(self, answer: Callable[[Event], Outcome] | None = None) -> None:
        super().__init__({}, InstanceContext("rec", "any", Path(".")))
        self.answer = answer
        self.delivered: list[Event] = []
        self.calls = 0
        self.closed = False

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        self.calls += 1
        outcomes = [self.answer(e) if self.answer else DELIVERED for e in batch]
        self.delivered += [e for e, o in zip(batch, outcomes, strict=True) if o == DELIVERED]
        await asyncio.sleep(0)
        return outcomes

    async def close(self) -> None:
        self.closed = True

    def ids(self) -> list[str]:
        return [str(e.messageId) for e in self.delivered]


def event(n: int, *, user: str | None = None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "track",
        "event": "E",
        "userId": user or f"u{n % 5}",
        "messageId": f"m{n}",
    }
    base.update(fields)
    return base


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    lg = LmdbLog(tmp_path, sync=False)
    try:
        yield lg
    finally:
        lg.close()


def settings(**kw: Any) -> DeliverySettings:
    base: dict[str, Any] = {
        "limits": BatchLimits(max_count=10, linger=0.0),
        "concurrency": 3,
        "policy": FAST,
    }
    base.update(kw)
    return DeliverySettings(**base)


def job(first: int, last: int, *, job_id: str = "1", **kw: Any) -> ReplayJob:
    spec = kw.pop("filter", ReplayFilter())
    return ReplayJob(
        id=job_id, destination="rec", first_seq=first, last_seq=last, filter=spec, **kw
    )


def make_run(
    log: LmdbLog,
    replay: ReplayJob,
    dest: Destination,
    *,
    event_filter: EventFilter | None = None,
    done: Callable[[ReplayRun], None] | None = None,
    **kw: Any,
) -> ReplayRun:
    return ReplayRun(
        log, replay, dest, destination_filter=event_filter, settings=settings(**kw), on_done=done
    )


async def run_to_end(run: ReplayRun, timeout: float = 20.0) -> None:
    finished = asyncio.Event()
    run.on_done = lambda _run: finished.set()
    await run.start()
    await asyncio.wait_for(finished.wait(), timeout)


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
