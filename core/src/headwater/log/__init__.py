"""The append-only event log."""

from ._errors import LogClosedError, LogError, LogFullError, LogUnavailableError
from ._interface import EventLog
from ._jetstream import JetStreamLog
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
from ._open import AnyLog, open_log
from ._partition import partition_of, partition_subject, user_key
from ._records import (
    AppendResult,
    LogRecord,
    LogStats,
    RecordHeader,
    RejectedItem,
    key_seq,
    seq_key,
)

__all__ = [
    "CURSORS",
    "EVENTS",
    "META",
    "REJECTED",
    "SIDE_TABLES",
    "AnyLog",
    "AppendResult",
    "EventLog",
    "JetStreamLog",
    "LmdbLog",
    "LogClosedError",
    "LogError",
    "LogFullError",
    "LogRecord",
    "LogStats",
    "LogUnavailableError",
    "RecordHeader",
    "RejectedItem",
    "iso_us",
    "key_seq",
    "now_us",
    "open_log",
    "partition_of",
    "partition_subject",
    "seq_key",
    "user_key",
]
