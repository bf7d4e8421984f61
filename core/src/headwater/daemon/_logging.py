"""Structured logs: one JSON object per line when stderr is not a terminal, readable
``key=value`` lines when it is.

Records carry their structured fields in ``extra={"fields": {...}}``. Callers never put
config values, write keys or tokens in fields. As a second line of defence, the daemon
registers every secret of its running config (``set_log_secrets``, again on each reload),
and every line is written with them masked: the message, the fields and a traceback, whose
exception text may quote what a library was given.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from headwater_spec import SecretRedactor

_HANDLER_MARK = "_headwater_handler"
_redact = SecretRedactor(())


def set_log_secrets(values: Iterable[str]) -> None:
    """Mask ``values`` in every log line written from now on (replaces the earlier set)."""
    global _redact
    _redact = SecretRedactor(values)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    if not isinstance(fields, dict):
        return {}
    return {k: _redact(v) if isinstance(v, str) else v for k, v in fields.items()}


def _time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _redact(record.getMessage()),
        }
        out.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = _redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{_time(record)} {record.levelname.lower():<7} {record.getMessage()}"
        if pairs:
            line = f"{line}  {pairs}"
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return _redact(line)


def setup_logging(
    stream: IO[str] | None = None, *, json_lines: bool | None = None, level: int = logging.INFO
) -> None:
    """Send `headwater.*` logs to ``stream`` (stderr), as JSON unless it is a terminal."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    root = logging.getLogger("headwater")
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
