"""Bulk import of events from JSON Lines or a CSV of people.

A file is checked whole before anything is stored: when any line is bad, every bad line is
reported with its number and nothing is appended (so the fixed file can be imported again
without duplicates), unless ``skip_invalid`` asks to store the good lines anyway.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec

from headwater_spec import EventError, event_from_dict, event_to_dict

from .log import EventLog, iso_us, now_us

Format = Literal["jsonl", "csv"]
CHUNK = 1000
_decoder = msgspec.json.Decoder()


class BadLine(msgspec.Struct, frozen=True):
    line: int
    message: str


class ImportReport(msgspec.Struct):
    file: str
    format: Format
    imported: int = 0
    bad: list[BadLine] = []
    first_seq: int | None = None
    last_seq: int | None = None


def detect_format(path: Path) -> Format:
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def _jsonl_events(fh: io.BufferedReader) -> Iterator[tuple[int, int, dict[str, Any] | BadLine]]:
    for number, raw in enumerate(fh, start=1):
        size = len(raw)
        if not raw.strip():
            yield number, size, {}
            continue
        try:
            obj = _decoder.decode(raw)
            event = event_from_dict(obj)
        except msgspec.DecodeError as exc:
            yield number, size, BadLine(number, f"not valid JSON: {exc}")
            continue
        except EventError as exc:
            yield number, size, BadLine(number, str(exc))
            continue
        yield number, size, event_to_dict(event)


def _csv_events(
    fh: io.BufferedReader, id_column: str
) -> Iterator[tuple[int, int, dict[str, Any] | BadLine]]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    if reader.fieldnames is None:
        return
    if id_column not in reader.fieldnames:
        cols = ", ".join(reader.fieldnames)
        yield 1, 0, BadLine(1, f"no column {id_column!r} (columns: {cols}); pass --id-column")
        return
    for row in reader:
        number = reader.line_num
        user_id = (row.get(id_column) or "").strip()
        if not user_id:
            yield number, 0, BadLine(number, f"empty {id_column!r}; every row needs a user id")
            continue
        if None in row:
            yield number, 0, BadLine(number, "more values than header columns")
            continue
        traits = {k: v for k, v in row.items() if k != id_column and v not in (None, "")}
        yield number, 0, {"type": "identify", "userId": user_id, "traits": traits}


def import_file(
    log: EventLog,
    path: Path,
    *,
    source: str = "import",
    fmt: Format | None = None,
    id_column: str = "id",
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check then append the events of ``path``; ``progress`` gets bytes/rows advanced."""
    fmt = fmt or detect_format(path)
    report = ImportReport(file=str(path), format=fmt)
    report.bad = [item for item in _read(path, fmt, id_column, None) if isinstance(item, BadLine)]
    if report.bad and not skip_invalid:
        return report
    batch: list[dict[str, Any]] = []
    for item in _read(path, fmt, id_column, progress):
        if isinstance(item, BadLine) or not item:
            continue
        _server_fields(item)
        batch.append(item)
        if len(batch) >= CHUNK:
            _flush(log, source, batch, report)
    if batch:
        _flush(log, source, batch, report)
    return report


def _read(
    path: Path, fmt: Format, id_column: str, progress: Callable[[int], None] | None
) -> Iterator[dict[str, Any] | BadLine]:
    with path.open("rb") as fh:
        rows = _jsonl_events(fh) if fmt == "jsonl" else _csv_events(fh, id_column)
        for _number, size, item in rows:
            if progress is not None:
                progress(size or 1)
            yield item


def _server_fields(event: dict[str, Any]) -> None:
    event.setdefault("messageId", str(uuid.uuid4()))
    event.setdefault("receivedAt", iso_us(now_us()))
    event.setdefault("timestamp", event.get("originalTimestamp") or event["receivedAt"])


def _flush(log: EventLog, source: str, batch: list[dict[str, Any]], report: ImportReport) -> None:
    result = log.append_sync(source, batch)
    report.imported += result.count
    if report.first_seq is None:
        report.first_seq = result.first_seq
    report.last_seq = result.last_seq
    batch.clear()
