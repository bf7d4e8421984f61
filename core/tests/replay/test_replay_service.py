"""The replay service beside a real router: a job waits while its destination is paused
and goes on when it is resumed; a job of a changed destination restarts with the new
config; jobs are listed with their progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.config import Config, ConnectorInstance
from headwater.lifecycle import set_paused
from headwater.log import LmdbLog
from headwater.plugins import load_plugins
from headwater.replay import JobStateError, ReplayRequest, ReplayService
from headwater.router import InstanceContext, Router
from headwater.testing_webhook import WebhookSink

from .conftest import event, wait_until

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
