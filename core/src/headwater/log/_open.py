"""Open the log a config names: LMDB in the data dir, or a JetStream stream."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, overload

from ._jetstream import JetStreamLog
from ._lmdb import LmdbLog

if TYPE_CHECKING:
    from ..config import Config

AnyLog = LmdbLog | JetStreamLog
"""Either backend: both implement EventLog and the side-table methods."""


@overload
def open_log(target: str | os.PathLike[str], *, readonly: bool = False) -> LmdbLog: ...


@overload
def open_log(target: Config, *, readonly: bool = False) -> AnyLog: ...


def open_log(target: Config | str | os.PathLike[str], *, readonly: bool = False) -> AnyLog:
    """The log of a config (``[log] backend``), or the LMDB log of a data dir.

    Raises LogError when it cannot be opened (no log yet for ``readonly``, NATS unreachable,
    the NATS client not installed), with the fix in the message."""
    if isinstance(target, str | os.PathLike):
        return LmdbLog(target, readonly=readonly)
    if target.log.backend == "jetstream":
        return JetStreamLog.from_config(target.log, readonly=readonly)
    return LmdbLog(target.data_dir, readonly=readonly, max_size=target.log.max_size)
