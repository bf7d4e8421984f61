"""A real full disk: the log lives on a small tmpfs that runs out of space.

Needs root (to mount); skipped with the reason otherwise. The map-level version of the same
promise (a tiny map with growth disabled) runs everywhere, in test_log_lmdb.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.log import LmdbLog, LogFullError

pytestmark = pytest.mark.timeout(60)


def _mount(path: Path, size: str) -> str | None:
    """Mount a tmpfs at ``path``; return why not when it cannot be done here."""
    if shutil.which("mount") is None:
        return "no `mount` command"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
    return None


@pytest.fixture
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp(f"tmpfs-{uuid.uuid4().hex[:8]}")
    why = _mount(path, "1m")
    if why is not None:
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_fails_the_append_cleanly_and_the_log_reopens_intact(
    small_disk: Path,
) -> None:
    event = {"type": "track", "event": "Blob", "userId": "u", "properties": {"b": "z" * 2000}}
    acknowledged = 0
    with LmdbLog(small_disk) as log:  # the default 1 GiB map: only the disk can fill
        with pytest.raises(LogFullError, match=r"disk holding .* is full") as caught:
            for _ in range(10_000):
                log.append_sync("s", [event] * 20)
                acknowledged += 20
        assert "nothing of this append was written" in str(caught.value)
        assert acknowledged > 0
        assert log.stats().events == acknowledged
        # The same handle keeps serving reads, and fails again cleanly when asked again.
        assert log.last_seq() == acknowledged
        with pytest.raises(LogFullError):
            log.append_sync("s", [event] * 20)

    with LmdbLog(small_disk, readonly=True) as again:
        records = list(again.scan())
        assert [r.seq for r in records] == list(range(1, acknowledged + 1))
        assert all(r.event["properties"]["b"] == "z" * 2000 for r in records)

    # Once there is room again, appending continues where it stopped.
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    with LmdbLog(small_disk) as log:
        result = log.append_sync("s", [event] * 20)
        assert result.first_seq == acknowledged + 1
        assert log.stats().events == acknowledged + 20
