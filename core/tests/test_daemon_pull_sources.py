"""Pull sources run as supervised tasks: restarted with backoff after a failure, their
events and checkpoint committed together in the log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from headwater.config import config_from_dict
from headwater.daemon import Daemon, _pull
from headwater.plugins import load_plugins
from headwater_spec import ConnectorSpec, Register, Source, SourceContext, Track, hookimpl

SPEC = ConnectorSpec.from_dict(
    {
        "name": "flaky-pull",
        "version": "0.0.1",
        "direction": "in",
        "regions": {"any": {}},
        "config": {"type": "object"},
    }
)


class FlakyPull(Source):
    """Fails on its first run; then emits three events, each with its checkpoint."""

    spec = SPEC
    runs = 0

    async def run(self, ctx: SourceContext) -> None:
        type(self).runs += 1
        if type(self).runs == 1:
            raise RuntimeError("database unreachable")
        start = int(await ctx.load_checkpoint() or b"0")
        for n in range(start, start + 3):
            event = Track(userId="u", event="Row", messageId=f"row-{n}")
            await ctx.emit_and_checkpoint([event], str(n + 1).encode())
        await asyncio.Event().wait()


class Plugin:
    @hookimpl
    def register_connectors(self, register: Register) -> None:
        register(FlakyPull)


def make_daemon(data_dir: Path) -> Daemon:
    config = config_from_dict(
        {
            "workspace": {"data_dir": str(data_dir)},
            "server": {"listen": "127.0.0.1:0"},
            "sources": {"rows": {"connector": "flaky-pull"}},
        }
    )
    return Daemon(config, registry=load_plugins(only=set(), extra=[("flaky", Plugin())]))


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(30)
async def test_a_failing_pull_source_restarts_and_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pull, "FIRST_BACKOFF", 0.05)
    FlakyPull.runs = 0
    daemon = make_daemon(tmp_path)
    await daemon.start()
    try:
        await wait_for(lambda: daemon.log.last_seq() >= 3)
        assert FlakyPull.runs == 2
        assert (
            'headwater_source_restarts_total{source="rows"} 1' in daemon.metrics.render().decode()
        )
        assert await daemon.contexts["rows"].load_checkpoint() == b"3"
    finally:
        await daemon.stop()

    again = make_daemon(tmp_path)  # a restart of the process: runs == 2, so no failure
    await again.start()
    try:
        await wait_for(lambda: again.log.last_seq() >= 6)
        ids = [r.event["messageId"] for r in again.log.scan()]
        assert ids == [f"row-{n}" for n in range(6)]
    finally:
        await again.stop()
