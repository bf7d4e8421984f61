"""Bulk import of events from JSON Lines or a CSV of people.

A file is checked whole before anything is stored: when any line is bad, every bad line is
reported with its number and nothing is appended (so the fixed file can be imported again
without duplicates), unless ``skip_invalid`` asks to store the good lines anyway.

Events are then appended in chunks of ``CHUNK``, each one durable commit, so a file larger
than memory imports in bounded memory. Should the log fail part-way (a full disk), the
chunks already committed stay and ``ImportAborted`` says how far the import got; every
imported event carries a messageId (kept from the file, else generated), so destinations
that de-duplicate on it are safe when the rest is imported again.

CSV: the header row names the columns; ``id_column`` holds the userId; every other
non-empty cell becomes a trait, as text (a CSV has no types; Segment's CSV uploads do the
same). The line numbers reported are the file's physical lines, header included.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from headwater_spec import EventError, event_from_dict, event_to_dict

from .log import EventLog, LogError, iso_us, now_us

Format = Literal["jsonl", "csv"]
CHUNK = 1000
_decoder = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"


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


class ImportAborted(LogError):
    """The log failed part-way; ``report`` says what was stored before ``__cause__``."""

    def __init__(self, report: ImportReport, error: LogError) -> None:
        self.report = report
        stored = (
            f"{report.imported} events were stored (seq {report.first_seq}..{report.last_seq})"
            if report.imported
            else "nothing was stored"
        )
        super().__init__(f"import of {report.file} stopped: {error}; {stored}")


def detect_format(path: Path) -> Format:
    """``.csv`` is CSV; anything else (.jsonl, .ndjson, .json, ...) is JSON Lines."""
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def count_units(path: Path, fmt: Format) -> int:
    """What ``progress`` counts per pass: bytes of JSON Lines, lines of CSV."""
    if fmt == "jsonl":
        return path.stat().st_size
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


Item = tuple[int, dict[str, Any] | BadLine | None]
"""(progress units, the event, a bad line, or None for a line with nothing on it)."""


def _jsonl_events(fh: IO[bytes]) -> Iterator[Item]:
    for number, raw in enumerate(fh, start=1):
        size = len(raw)
        line = raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw
        if not line.strip():
            yield size, None
            continue
        try:
            event = event_from_dict(_decoder.decode(line))
        except msgspec.DecodeError as exc:
            yield size, BadLine(number, f"not valid JSON: {exc}")
            continue
        except EventError as exc:
            yield size, BadLine(number, str(exc))
            continue
        yield size, event_to_dict(event)


def _csv_events(fh: IO[bytes], id_column: str) -> Iterator[Item]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        columns = reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as exc:
        yield 1, BadLine(1, f"cannot read the header row: {exc}")
        return
    if columns is None:
        return
    seen = reader.line_num
    yield seen, None  # the header row
    if id_column not in columns:
        listed = ", ".join(columns)
        yield 0, BadLine(1, f"no column {id_column!r} (columns: {listed}); pass --id-column")
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as exc:
            yield 1, BadLine(reader.line_num + 1, f"cannot read the row: {exc}")
            return
        number = reader.line_num
        units, seen = number - seen, number
        if None in row:
            count = len(columns) + len(row[None])
            yield units, BadLine(number, f"{count} values for {len(columns)} columns")
            continue
        user_id = (row.get(id_column) or "").strip()
        if not user_id:
            yield units, BadLine(number, f"empty {id_column!r}; every row needs a user id")
            continue
        traits = {k: v for k, v in row.items() if k != id_column and v not in (None, "")}
        yield units, {"type": "identify", "userId": user_id, "traits": traits}


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
    """Check then append the events of ``path``.

    ``progress`` is called with the units (``count_units``) each pass advances: the check
    pass and the store pass each count the whole file once. Raises ImportAborted when the
    log fails part-way (OSError when the file cannot be read).
    """
    fmt = fmt or detect_format(path)
    report = ImportReport(file=str(path), format=fmt)
    checked = _read(path, fmt, id_column, progress)
    report.bad = [item for item in checked if isinstance(item, BadLine)]
    if report.bad and not skip_invalid:
        return report
    batch: list[dict[str, Any]] = []
    try:
        for item in _read(path, fmt, id_column, progress):
            if isinstance(item, BadLine):
                continue
            _server_fields(item)
            batch.append(item)
            if len(batch) >= CHUNK:
                _flush(log, source, batch, report)
        if batch:
            _flush(log, source, batch, report)
    except ImportAborted:
        raise
    except LogError as exc:
        raise ImportAborted(report, exc) from exc
    return report


def _read(
    path: Path, fmt: Format, id_column: str, progress: Callable[[int], None] | None
) -> Iterator[dict[str, Any] | BadLine]:
    with path.open("rb") as fh:
        rows = _jsonl_events(fh) if fmt == "jsonl" else _csv_events(fh, id_column)
        for units, item in rows:
            if progress is not None and units:
                progress(units)
            if item is not None:
                yield item


def _server_fields(event: dict[str, Any]) -> None:
    """What the tracking API would add on receipt: an id, the receipt time, a timestamp."""
    if not event.get("messageId"):
        event["messageId"] = str(uuid.uuid4())
    event.setdefault("receivedAt", iso_us(now_us()))
    event.setdefault("timestamp", event.get("originalTimestamp") or event["receivedAt"])


def _flush(log: EventLog, source: str, batch: list[dict[str, Any]], report: ImportReport) -> None:
    result = log.append_sync(source, batch)
    report.imported += result.count
    if report.first_seq is None:
        report.first_seq = result.first_seq
    report.last_seq = result.last_seq
    batch.clear()
