"""The append-only event log."""

from ._errors import LogClosedError, LogError, LogFullError
from ._interface import EventLog
from ._lmdb import (
    CURSORS,
    EVENTS,
    META,
    REJECTED,
    SIDE_TABLES,
    LmdbLog,
    iso_us,
    now_us,
)
from ._records import AppendResult, LogRecord, LogStats, RecordHeader, RejectedItem, key_seq, seq_key

__all__ = [
    "CURSORS",
    "EVENTS",
    "META",
    "REJECTED",
    "SIDE_TABLES",
    "AppendResult",
    "EventLog",
    "LmdbLog",
    "LogClosedError",
    "LogError",
    "LogFullError",
    "LogRecord",
    "LogStats",
    "RecordHeader",
    "RejectedItem",
    "iso_us",
    "key_seq",
    "now_us",
    "open_log",
    "seq_key",
]


def open_log(data_dir: str, *, readonly: bool = False) -> LmdbLog:
    """Open the log of a data dir (the LMDB backend)."""
    return LmdbLog(data_dir, readonly=readonly)
