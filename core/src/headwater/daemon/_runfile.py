"""``<data_dir>/serve.json``: where the running daemon listens, for tools and tests.

Written once the server listens (so a ``listen`` port of 0 can be discovered), removed on a
clean stop. A stale file (after kill -9) names a pid that no longer runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

RUNFILE = "serve.json"


class RunInfo(msgspec.Struct, frozen=True):
    pid: int
    url: str
    started_at: str


def write_runfile(data_dir: Path, info: RunInfo) -> Path:
    path = data_dir / RUNFILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(info))
    os.replace(tmp, path)
    return path


def read_runfile(data_dir: Path) -> RunInfo | None:
    try:
        return msgspec.json.decode((data_dir / RUNFILE).read_bytes(), type=RunInfo)
    except (FileNotFoundError, msgspec.DecodeError, json.JSONDecodeError):
        return None


def remove_runfile(data_dir: Path, pid: int) -> None:
    info = read_runfile(data_dir)
    if info is not None and info.pid == pid:
        (data_dir / RUNFILE).unlink(missing_ok=True)
