"""The replay service beside a real router: a job waits while its destination is paused
and goes on when it is resumed; a job of a changed destination restarts with the new
config; jobs are listed with their progress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from headwater.config import Config, ConnectorInstance
from headwater.lifecycle import set_paused
from headwater.log import LmdbLog
from headwater.plugins import load_plugins
from headwater.replay import JobStateError, ReplayRequest, ReplayService, load_job
from headwater.router import DeliverySettings, EventFilter, InstanceContext, Router
from headwater.testing_webhook import WebhookSink
from headwater_spec import Destination, Event, Outcome

from .conftest import Recorder, event, settings, wait_until

pytestmark = pytest.mark.timeout(60)


def webhook(url: str) -> ConnectorInstance:
    return ConnectorInstance(
        id="b", kind="destination", connector="webhook", options={"url": f"{url}/b"}
    )


async def test_a_job_waits_for_a_paused_destination_and_follows_changes(
    log: LmdbLog, tmp_path: Path
) -> None:
    log.append_sync("web", [event(n) for n in range(300)])
    registry = load_plugins()
    with WebhookSink() as first, WebhookSink() as second:
        config = Config(destinations={"b": webhook(first.url)})
        config.workspace.data_dir = str(tmp_path)

        def context(instance: ConnectorInstance) -> InstanceContext:
            return InstanceContext(instance.id, "us", tmp_path, instance.endpoint)

        router = Router(log, config, registry, context_factory=context)
        await router.start()
        service = ReplayService(
            log, config, registry, context_factory=context, router=router,
            config_source=lambda: config,
        )  # fmt: skip
        await service.start()
        try:
            set_paused(log, "b", True)
            await router.stop_destination("b")
            status = await service.create(ReplayRequest(destination="b", rate="1000/s"))
            assert status.state == "running" and status.waiting is not None
            assert "paused" in status.waiting and first.events_delivered == 0

            set_paused(log, "b", False)
            await router.start_destination(config.destinations["b"])
            await service.destination_changed("b")
            await wait_until(lambda: first.events_delivered >= 50)

            config.destinations["b"] = webhook(second.url)  # a reload changed its url
            await router.stop_destination("b")
            await router.start_destination(config.destinations["b"])
            await service.destination_changed("b")
            await wait_until(lambda: service.status(status.id).state == "done", 20)
            got = first.delivered_ids() + second.delivered_ids()
            assert sorted(got) == sorted(f"m{n}" for n in range(300))
            assert second.events_delivered > 0, "the rest went to the changed url"
            (listed,) = service.list()
            assert listed.progress.done == listed.progress.total == 300
            with pytest.raises(JobStateError, match="done"):
                await service.control(status.id, "pause")
        finally:
            await service.stop()
            await router.stop()


class HoldsOne(Recorder):
    """Takes 50 ms a batch, and holds the first batch after ``after`` events until
    ``gate`` is set."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.gate = asyncio.Event()
        self.holding = False

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        if not self.holding and len(self.delivered) >= self.after:
            self.holding = True
            await self.gate.wait()
        else:
            await asyncio.sleep(0.05)
        return await super().send(batch)


async def test_a_pause_is_written_once_the_batches_in_flight_have_landed(
    log: LmdbLog, tmp_path: Path
) -> None:
    """Another daemon (shared replay) or the CLI reading the log must not see "paused"
    while a batch is still on its way to the destination."""
    log.append_sync("web", [event(n) for n in range(3000)])
    config = Config(destinations={"b": webhook("http://127.0.0.1:9")})
    config.workspace.data_dir = str(tmp_path)
    destination = HoldsOne(after=100)
    service = ReplayService(
        log, config, load_plugins(), config_source=lambda: config,
        context_factory=lambda i: InstanceContext(i.id, "us", tmp_path, i.endpoint),
    )  # fmt: skip

    def build(instance: ConnectorInstance) -> tuple[Destination, DeliverySettings, EventFilter]:
        return destination, settings(), EventFilter()

    service._build = build  # type: ignore[method-assign]
    await service.start()
    try:
        job = await service.create(ReplayRequest(destination="b"))
        await wait_until(lambda: destination.holding)
        pausing = asyncio.create_task(service.control(job.id, "pause"))
        await asyncio.sleep(0.5)  # the other lanes finish their batches and commit
        assert not pausing.done()
        assert load_job(log, job.id).state == "running", "paused with a batch in flight"
        destination.gate.set()
        assert (await pausing).state == "paused"
        assert load_job(log, job.id).state == "paused"
    finally:
        await service.stop()
