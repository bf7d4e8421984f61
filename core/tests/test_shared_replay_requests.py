"""A pause request left in the state bucket for the daemon that runs the job (shared
replay on JetStream) survives a failure while it is applied: it is tried again on the
next round, not deleted first and lost."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from headwater.config import config_from_dict
from headwater.daemon import Daemon
from headwater.log import JetStreamLog, LogError
from headwater.log._nats_connect import NatsOptions
from headwater.replay import REPLAYS, ReplayRequest, ReplayService, load_job
from headwater.shared_replay import SharedReplayService
from headwater.shared_replay._service import control_key
from headwater.testing_webhook import WebhookSink

pytestmark = pytest.mark.timeout(60)


async def test_a_pause_request_that_fails_while_applied_is_applied_next_round(
    nats_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = f"hwtest-{uuid.uuid4().hex[:10]}"
    with WebhookSink(keep=False) as sink:
        config = config_from_dict(
            {
                "workspace": {"data_dir": str(tmp_path)},
                "server": {"listen": "127.0.0.1:0"},
                "log": {"backend": "jetstream", "servers": [nats_url], "stream": stream},
                "destinations": {"hook": {"connector": "webhook", "url": f"{sink.url}/h"}},
            }
        )
        daemon = Daemon(config)
        await daemon.start()
        log = daemon.log
        assert isinstance(log, JetStreamLog)
        try:
            await log.append(
                "web", [{"type": "track", "event": "E", "userId": f"u{i}"} for i in range(200)]
            )
            service = next(s for s in daemon.services if isinstance(s, SharedReplayService))
            job = await service.create(ReplayRequest(destination="hook", rate=5.0))
            failures: list[str] = []
            control = ReplayService.control

            async def fail_once(self: ReplayService, job_id: str, action: str) -> Any:
                if not failures:
                    failures.append(action)
                    raise LogError("the state bucket cannot be reached")
                return await control(self, job_id, action)

            monkeypatch.setattr(ReplayService, "control", fail_once)
            await log.awrite_batch([(REPLAYS, control_key(job.id), b"pause")])
            for _ in range(150):  # rounds every lease_ttl / 3
                # the request is deleted just after the job is paused: wait for both
                applied = load_job(log, job.id).state == "paused"
                if applied and log.get_value(REPLAYS, control_key(job.id)) is None:
                    break
                await asyncio.sleep(0.1)
            assert failures == ["pause"]
            assert load_job(log, job.id).state == "paused"
            assert log.get_value(REPLAYS, control_key(job.id)) is None
        finally:
            await daemon.stop()
            leftover = JetStreamLog(NatsOptions(servers=(nats_url,)), stream)
            leftover.drop()
            leftover.close()
