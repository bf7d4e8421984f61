"""The LMDB log across processes: a writer killed with SIGKILL loses nothing it acknowledged,
and two processes appending to one log share a single gap-free sequence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from headwater.log import LmdbLog

pytestmark = pytest.mark.timeout(120)

APPENDER = textwrap.dedent(
    """
    import asyncio, os, sys
    from headwater.log import LmdbLog

    log = LmdbLog(sys.argv[1])
    TASKS, PER_APPEND = 8, 10

    async def appender(task):
        n = 0
        while True:
            batch = [
                {"type": "track", "event": "Tick", "userId": f"u{task}",
                 "properties": {"task": task, "n": n + i, "pad": "p" * 300}}
                for i in range(PER_APPEND)
            ]
            result = await log.append(f"task-{task}", batch)
            n += PER_APPEND
            # Reported only after append returned, i.e. after the commit was synced.
            os.write(1, f"{task} {result.first_seq} {result.last_seq}\\n".encode())

    async def main():
        await asyncio.gather(*(appender(t) for t in range(TASKS)))

    asyncio.run(main())
    """
)


def _run_child(script: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("acks_before_kill", [50, 400])
def test_a_writer_killed_with_sigkill_loses_nothing_it_acknowledged(
    tmp_path: Path, acks_before_kill: int
) -> None:
    child = _run_child(APPENDER, str(tmp_path))
    assert child.stdout is not None
    acked: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 60
    while len(acked) < acks_before_kill:
        line = child.stdout.readline()
        if not line:
            _, err = child.communicate()
            pytest.fail(f"the appender exited early: {err.decode()}")
        task, first, last = map(int, line.split())
        acked.append((task, first, last))
        assert time.monotonic() < deadline, "the appender is too slow"
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate()  # what it acknowledged before it died
    for line in rest.decode().splitlines():
        if line.count(" ") == 2:  # a line cut by the kill is no acknowledgement
            task, first, last = map(int, line.split())
            acked.append((task, first, last))
    assert child.returncode == -signal.SIGKILL

    with LmdbLog(tmp_path) as log:  # opened for writing: recovery happens here if any
        stored = {r.seq: r for r in log.scan()}
        acknowledged = sum(last - first + 1 for _, first, last in acked)
        assert len(stored) >= acknowledged
        assert sorted(stored) == list(range(1, len(stored) + 1)), "the log has a gap"
        for task, first, last in acked:
            for seq in range(first, last + 1):
                assert seq in stored, f"acknowledged seq {seq} was lost"
                assert stored[seq].source == f"task-{task}"
                assert stored[seq].event["properties"]["task"] == task
        # Each task's events are stored in the order it appended them, with no holes.
        for task in {t for t, _, _ in acked}:
            ns = [r.event["properties"]["n"] for r in stored.values() if r.source == f"task-{task}"]
            assert ns == list(range(len(ns)))
        after = log.append_sync("after-crash", [{"type": "identify", "userId": "u"}])
        assert after.first_seq == len(stored) + 1


ONE_APPEND = textwrap.dedent(
    """
    import sys
    from headwater.log import LmdbLog
    with LmdbLog(sys.argv[1]) as log:
        result = log.append_sync("other", [{"type": "identify", "userId": "o"}] * 3)
        print(result.first_seq, result.last_seq, result.received_at)
    """
)


def test_two_processes_appending_share_one_gap_free_sequence(tmp_path: Path) -> None:
    """As the daemon and `headwater import` do: the daemon keeps its log open meanwhile."""
    with LmdbLog(tmp_path) as log:
        mine = log.append_sync("mine", [{"type": "identify", "userId": "m"}] * 2)
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", ONE_APPEND, str(tmp_path)],
                capture_output=True,
                check=True,
                timeout=60,
            )
            first, last, received_at = map(int, out.stdout.split())
            assert (first, last) == (mine.last_seq + 1, mine.last_seq + 3)
            mine = log.append_sync("mine", [{"type": "identify", "userId": "m"}] * 2)
            assert mine.first_seq == last + 1
            assert mine.received_at >= received_at
        records = list(log.scan())
        assert [r.seq for r in records] == list(range(1, 13))
        assert [r.source for r in records] == ["mine"] * 2 + (["other"] * 3 + ["mine"] * 2) * 2
        times = [r.received_at for r in records]
        assert times == sorted(times)


GROWER = textwrap.dedent(
    """
    import sys
    from headwater.log import LmdbLog
    with LmdbLog(sys.argv[1], map_size=64 * 1024) as log:
        for _ in range(50):
            blob = {"type": "identify", "userId": "u", "traits": {"x": "y" * 2000}}
            log.append_sync("grower", [blob] * 10)
        print(log.env.info()["map_size"])
    """
)


def test_a_reader_keeps_reading_after_another_process_grew_the_map(tmp_path: Path) -> None:
    with LmdbLog(tmp_path, map_size=64 * 1024) as writer:
        writer.append_sync("first", [{"type": "identify", "userId": "u"}])
    with LmdbLog(tmp_path, readonly=True, map_size=64 * 1024) as reader:
        assert reader.stats().events == 1
        out = subprocess.run(
            [sys.executable, "-c", GROWER, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        grown = int(out.stdout)
        assert grown > 64 * 1024
        assert reader.stats().events == 501  # adopts the larger map instead of failing
        assert reader.env.info()["map_size"] == grown
        assert sum(1 for _ in reader.scan()) == 501
