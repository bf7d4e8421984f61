"""A delivery task that fails is reported and its loop starts again from the durable
cursor: a real LMDB log, the webhook connector and a webhook sink on loopback, and a lane
made to raise as a bug of ours would."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import Config, ConnectorInstance
from headwater.daemon import Metrics
from headwater.log import LmdbLog, now_us
from headwater.plugins import load_plugins
from headwater.replay import ReplayJob, ReplayRun, load_job, save_job
from headwater.router import BatchLimits, DeliverySettings, InstanceContext, Router, read_status
from headwater.router._lane import Lane
from headwater.router._records import DESTINATIONS, DestinationRecord, encode, stats_key
from headwater.router._supervise import RestartBackoff
from headwater.testing_webhook import WebhookSink

from .conftest import FAST, Recorder, settings, track, wait_until
from .test_router_metrics import value
from .test_router_service import write_config

pytestmark = pytest.mark.timeout(60)
EVENTS = 400


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as running:
        yield running


def fail_lanes(monkeypatch: pytest.MonkeyPatch, runs: int) -> list[object]:
    """Make ``Lane._apply`` raise once in each of the first ``runs`` runs of a loop, after
    the batch went out (so those events reached the sink but are not finished: the restart
    must send them again). Returns the states of the runs that failed."""
    original = Lane._apply
    failed: list[object] = []

    def flaky(self: Lane, sent: Any, live: Sequence[Any], outcomes: Any) -> None:
        if live and len(failed) < runs and self.state not in failed:
            failed.append(self.state)
            raise RuntimeError("injected lane bug")
        original(self, sent, live, outcomes)  # type: ignore[arg-type]

    monkeypatch.setattr(Lane, "_apply", flaky)
    return failed


def last_delivery_order(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per user, the event numbers in the order of each event's last delivery."""
    last: dict[str, int] = {}
    for position, event in enumerate(events):
        last[event["messageId"]] = position
    out: dict[str, list[int]] = {}
    for mid, _ in sorted(last.items(), key=lambda kv: kv[1]):
        user = next(e["userId"] for e in events if e["messageId"] == mid)
        out.setdefault(user, []).append(int(mid[1:]))
    return out


async def test_a_failed_lane_is_reported_and_delivery_restarts_from_the_cursor(
    tmp_path: Path,
    sink: WebhookSink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LmdbLog(tmp_path / "log", sync=False)
    log.append_sync("web", [track(i, user=f"u{i % 7}") for i in range(EVENTS)])
    hook = ConnectorInstance(
        id="hook",
        kind="destination",
        connector="webhook",
        options={"url": f"{sink.url}/h"},
        start="beginning",
    )
    config = Config(destinations={"hook": hook})
    config.workspace.data_dir = str(tmp_path)
    registry = Metrics()
    router = Router(
        log,
        config,
        load_plugins(),
        base_settings=DeliverySettings(
            limits=BatchLimits(max_count=20, linger=0.0), concurrency=3, policy=FAST,
            poll_interval=0.05,
        ),
        context_factory=lambda i: InstanceContext(i.id, "us", tmp_path, i.endpoint),
        metrics=registry,
    )  # fmt: skip
    raised = fail_lanes(monkeypatch, runs=2)
    caplog.set_level(logging.ERROR, logger="headwater.router")
    seen: list[tuple[str, str, str | None, str | None, str, int]] = []
    await router.start()
    try:
        loop = router.loops["hook"]
        loop.restarts = RestartBackoff(first=0.01, most=0.02)
        original = loop.failed

        async def failed(task: str, error: BaseException, retry_in: float) -> None:
            await original(task, error, retry_in)
            # what the admin API and, from another process, `headwater destinations` show
            (admin,) = router.status()
            cli = read_status(log, "hook", connector="webhook")
            assert cli.last_failure is not None
            seen.append(
                (admin.state, cli.state, admin.last_failure, admin.restart_at, cli.last_failure,
                 cli.task_failures)
            )  # fmt: skip

        monkeypatch.setattr(loop, "failed", failed)
        await wait_until(lambda: len(set(sink.delivered_ids())) == EVENTS, 30)
        await wait_until(lambda: loop.state is not None and loop.state.cursor == EVENTS + 1)
        running = router.status()[0]
        metrics = registry.render().decode()
    finally:
        await router.stop()
        stopped = read_status(log, "hook", connector="webhook")
        log.close()

    assert len(raised) == 2
    assert [s[:2] for s in seen] == [("failed", "failed")] * 2
    assert all(s[2] == "RuntimeError: injected lane bug" == s[4] for s in seen)
    assert all(s[3] is not None for s in seen)
    assert [s[5] for s in seen] == [1, 2]

    failures = [r for r in caplog.records if "delivery task" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is not None and r.exc_info[0] is RuntimeError for r in failures)
    fields = failures[0].fields  # type: ignore[attr-defined]
    assert fields["destination"] == "hook" and fields["task"].startswith("hw-lane-hook-")
    assert f"{sink.url}" not in failures[0].getMessage()
    assert value(metrics, 'headwater_destination_task_failures_total{destination="hook"}') == 2

    assert running.state == "running" and running.restart_at is None
    assert running.task_failures == 2 and running.last_failure_at is not None
    assert stopped.state == "stopped" and stopped.task_failures == 2, "a stop is no failure"

    got = sink.delivered()
    assert {e["messageId"] for e in got} == {f"m{i}" for i in range(EVENTS)}
    assert len(got) > EVENTS, "the batches whose lane failed were sent again"
    for user, numbers in last_delivery_order(got).items():
        assert numbers == sorted(numbers), user


def test_restart_backoff_doubles_to_the_cap_and_resets_after_a_good_run() -> None:
    backoff = RestartBackoff(first=1.0, most=60.0, healthy_after=60.0)
    delays = [backoff.delay(ran_for=0.5) for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff.delay(ran_for=61.0) == 1.0
    assert backoff.delay(ran_for=3.0) == 2.0


async def test_a_replay_whose_lane_failed_restarts_and_finishes_with_every_event(
    log: LmdbLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.append_sync("web", [track(i, user=f"u{i % 5}") for i in range(300)])
    replay = ReplayJob(id="1", destination="rec", first_seq=1, last_seq=300)
    save_job(log, replay)
    failed = fail_lanes(monkeypatch, runs=1)
    dest = Recorder()
    finished = asyncio.Event()
    run = ReplayRun(log, replay, dest, settings=settings(), on_done=lambda _run: finished.set())
    run.restarts = RestartBackoff(first=0.01)
    errors: list[str] = []
    original = run.failed

    async def noted(task: str, error: BaseException, retry_in: float) -> None:
        await original(task, error, retry_in)
        errors.append(load_job(log, "1").error)

    monkeypatch.setattr(run, "failed", noted)
    await run.start()
    await asyncio.wait_for(finished.wait(), 30)
    assert len(failed) == 1 and len(errors) == 1
    assert errors[0].startswith("delivery task hw-replay-lane-1-")
    assert "RuntimeError: injected lane bug" in errors[0]
    assert set(dest.delivered_ids()) == {f"m{i}" for i in range(300)}
    stored = load_job(log, "1")
    assert stored.state == "done" and stored.error == ""
    assert stored.delivered >= 300  # the events sent again are counted again


def test_the_cli_shows_a_failed_destination_with_its_error_and_restart(tmp_path: Path) -> None:
    """What a failed loop saves (state, failures, error, restart time) as `headwater
    destinations` prints it from another process, table and JSON."""
    path = write_config(tmp_path)
    now = now_us()
    record = DestinationRecord(
        state="failed",
        pid=os.getpid(),
        task_failures=3,
        last_failure="RuntimeError: injected lane bug",
        last_failure_at=now,
        restart_at=now + 30_000_000,
    )
    with LmdbLog(tmp_path / "data", sync=False) as log:
        log.write_batch([(DESTINATIONS, stats_key("main"), encode(record))])
    runner = CliRunner()
    table = runner.invoke(cli, ["destinations", "-c", str(path)])
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if line.startswith("main "))
    assert row.split()[2] == "failed"
    assert "main: a delivery task failed 3 time(s)" in table.output
    assert "RuntimeError: injected lane bug; restarts at " in table.output
    listed = runner.invoke(cli, ["destinations", "-c", str(path), "--format", "json"])
    main = json.loads(listed.output)["destinations"][0]
    assert (main["state"], main["task_failures"]) == ("failed", 3)
    assert main["last_failure"] == "RuntimeError: injected lane bug"
    assert main["last_failure_at"] and main["restart_at"]
