"""The Router over a config and the plugin registry, its status, and the CLI commands that
read the same state from the log (`headwater destinations`, `headwater dlq ...`)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import load_config
from headwater.log import LmdbLog, iso_us
from headwater.plugins import load_plugins
from headwater.router import (
    DEAD_LETTERS,
    RETRIES,
    Router,
    StartError,
    cursor_name,
    list_dead_letters,
    read_status,
)
from headwater_spec import DELIVERED, Event, Outcome, Rejected, Retry, hookimpl

from .conftest import Recorder, make_loop, settle, track, wait_until

pytestmark = pytest.mark.timeout(60)
SENT: list[str] = []


class Picky(Recorder):
    """Delivers everything except events whose messageId ends in "3" (400) and records
    what it delivered in SENT, so tests can see across instances."""

    def __init__(self, config: dict[str, Any], context: Any) -> None:
        super().__init__(self.judge, name=context.instance_id)
        self.config = dict(config)
        self.context = context

    def judge(self, batch: Sequence[Event]) -> list[Outcome]:
        out: list[Outcome] = []
        for ev in batch:
            if str(ev.messageId).endswith("3") and not self.config.get("fixed"):
                out.append(Rejected(reason="HTTP 400: no 3s"))
            else:
                SENT.append(str(ev.messageId))
                out.append(DELIVERED)
        return out


class Plugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(Picky)


def write_config(tmp_path: Path, *, fixed: bool = False, extra: str = "") -> Path:
    path = tmp_path / "headwater.toml"
    path.write_text(
        f"""
[workspace]
data_dir = "data"

[destinations.main]
connector = "recorder"
start = "beginning"
fixed = {str(fixed).lower()}

[destinations.ghost]
connector = "not-installed"

[destinations.off]
connector = "recorder"
enabled = false
{extra}
"""
    )
    return path


def make_router(path: Path, log: LmdbLog) -> Router:
    registry = load_plugins(only=set(), extra=[("picky", Plugin())])
    return Router(log, load_config(path), registry)


async def test_router_runs_what_it_can_and_reports_the_rest(tmp_path: Path) -> None:
    SENT.clear()
    path = write_config(tmp_path)
    log = LmdbLog(tmp_path / "data", sync=False)
    log.append_sync("web", [track(i, user=f"u{i % 2}") for i in range(10)])
    router = make_router(path, log)
    await router.start()
    try:
        await wait_until(lambda: len(list_dead_letters(log, "main")) == 1)
        await settle(router.loops["main"])
        by_id = {s.id: s for s in router.status()}
        assert set(router.loops) == {"main"}
        assert by_id["ghost"].state == "failed" and "not-installed" in (by_id["ghost"].error or "")
        assert by_id["off"].state == "disabled"
        main = by_id["main"]
        assert main.state == "running" and main.delivered == 9 and main.dead_letters == 1
        assert main.lag_events == 0 and main.cursor == 11
        with pytest.raises(StartError):
            router.redrive("off")
    finally:
        await router.stop()
    stopped = read_status(log, "main", connector="recorder")
    assert stopped.state == "stopped" and stopped.delivered == 9 and stopped.pid is None
    log.close()


async def test_redrive_requested_while_stopped_happens_at_next_start(tmp_path: Path) -> None:
    SENT.clear()
    path = write_config(tmp_path)
    runner = CliRunner()
    log = LmdbLog(tmp_path / "data", sync=False)
    log.append_sync("web", [track(i) for i in range(5)])
    router = make_router(path, log)
    await router.start()
    await wait_until(lambda: len(list_dead_letters(log, "main")) == 1)
    await settle(router.loops["main"])
    await router.stop()
    log.close()  # LMDB opens an environment once per process; the CLI opens its own

    result = runner.invoke(cli, ["dlq", "redrive", "main", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "when `headwater serve` next starts" in result.output
    listed = runner.invoke(cli, ["dlq", "list", "main", "-c", str(path), "--format", "json"])
    data = json.loads(listed.output)
    assert data["redrive_requested"] is True and len(data["dead_letters"]) == 1

    log = LmdbLog(tmp_path / "data", sync=False)
    router = make_router(write_config(tmp_path, fixed=True), log)
    await router.start()
    try:
        await wait_until(lambda: SENT.count("m3") == 1)
        await wait_until(lambda: not log.items(DEAD_LETTERS) and not log.items(RETRIES))
    finally:
        await router.stop()
    log.close()


def test_cli_destinations_and_dlq_read_the_log(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    runner = CliRunner()
    empty = runner.invoke(cli, ["destinations", "-c", str(path), "--format", "json"])
    assert empty.exit_code == 0, empty.output
    assert [d["state"] for d in json.loads(empty.output)["destinations"]] == [
        "stopped",
        "stopped",
        "disabled",
    ]

    log = LmdbLog(tmp_path / "data", sync=False)
    log.append_sync("web", [track(i) for i in range(4)])
    loop = make_loop(log, Recorder(lambda b: [Rejected(reason="HTTP 422: nope")] * len(b)), "main")

    async def run() -> None:
        await loop.start()
        await settle(loop)
        await loop.stop()

    asyncio.run(run())
    log.close()

    table = runner.invoke(cli, ["destinations", "-c", str(path)])
    assert table.exit_code == 0, table.output
    assert "main" in table.output and "HTTP 422: nope" in table.output
    status = json.loads(
        runner.invoke(cli, ["destinations", "-c", str(path), "--format", "json"]).output
    )
    main = status["destinations"][0]
    assert (main["dead_lettered"], main["dead_letters"], main["cursor"]) == (4, 4, 5)

    listed = runner.invoke(cli, ["dlq", "list", "main", "-c", str(path), "--limit", "2"])
    assert listed.exit_code == 0
    assert listed.output.count("HTTP 422: nope") == 2 and "m0" in listed.output

    unknown = runner.invoke(cli, ["dlq", "list", "nope", "-c", str(path)])
    assert unknown.exit_code == 1 and "configured: ghost, main, off" in unknown.output

    refused = runner.invoke(cli, ["dlq", "purge", "main", "-c", str(path)], input="n\n")
    assert refused.exit_code == 1
    purged = runner.invoke(cli, ["dlq", "purge", "main", "-c", str(path), "--yes"])
    assert purged.exit_code == 0 and "4 dead letters deleted" in purged.output
    with LmdbLog(tmp_path / "data", readonly=True) as check:
        assert list_dead_letters(check, "main") == []


async def test_start_now_beginning_or_a_time(log: LmdbLog) -> None:
    log.append_sync("web", [track(0)])
    middle = log.get(1)
    assert middle is not None
    log.append_sync("web", [track(1)])
    for start, expected in (("now", 3), ("beginning", 1), (iso_us(middle.received_at + 1), 2)):
        loop = make_loop(log, Recorder(), f"d-{expected}", start=start)
        await loop.start()
        await loop.stop()
        assert log.get_cursor(cursor_name(f"d-{expected}")) == expected, start
    with pytest.raises(StartError, match="ISO 8601"):
        await make_loop(log, Recorder(), "bad", start="yesterday").start()


async def test_counters_survive_a_restart(log: LmdbLog) -> None:
    log.append_sync("web", [track(i) for i in range(3)])
    for _ in range(2):
        loop = make_loop(log, Recorder(lambda b: [Retry(reason="x")] * len(b)), "d", start="now")
        await loop.start()
        await loop.stop()
    loop = make_loop(log, Recorder(), "d2")
    await loop.start()
    await settle(loop)
    await loop.stop()
    loop = make_loop(log, Recorder(), "d2")
    await loop.start()
    await loop.stop()
    assert read_status(log, "d2", connector="recorder").delivered == 3
    assert os.getpid() not in (read_status(log, "d2", connector="recorder").pid,)
