"""Finding secret config values where they must never be: reprs, logs, error texts."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

from .._secrets import secret_locations, strings_in
from .._spec import ConnectorSpec

MIN_SECRET_LENGTH = 6
"""Shorter test secrets would match by chance; the suite asks for distinctive ones."""

_STANDARD_RECORD_KEYS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Secret:
    """A secret config value under test; its repr never shows the value."""

    def __init__(self, field: str, value: str) -> None:
        self.field = field
        self.value = value

    def __repr__(self) -> str:
        return f"Secret({self.field!r})"


def secrets_in(config: Mapping[str, Any], spec: ConnectorSpec) -> tuple[list[Secret], list[str]]:
    """The secret values set in ``config``, and problems that prevent checking them."""
    found: list[Secret] = []
    problems: list[str] = []
    for location, value in secret_locations(spec.secret_paths(), config):
        field = ".".join(str(part) for part in location)
        items = list(strings_in(value)) if isinstance(value, dict | list) else [value]
        for item in items:
            if not isinstance(item, str) or len(item) < MIN_SECRET_LENGTH:
                problems.append(
                    f"the secret field `{field}` is set to a value the suite cannot look for; "
                    f"give it a distinctive string of {MIN_SECRET_LENGTH}+ characters in your "
                    "conformance test's config() (e.g. 'hw-test-secret-1234')"
                )
                continue
            found.append(Secret(field, item))
    return found, problems


def record_text(record: logging.LogRecord) -> str:
    """Everything a log handler could write for ``record``: message, exception, extras."""
    parts = [record.getMessage()]
    if record.exc_info:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    for key, value in vars(record).items():
        if key not in _STANDARD_RECORD_KEYS:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)


def leaks(secrets: Iterable[Secret], texts: Iterable[tuple[str, str]]) -> list[str]:
    """One problem per (secret, place) where a secret value shows up.

    ``texts`` are (where, text) pairs, e.g. ("log record of 'httpx' at DEBUG", "...").
    """
    problems = []
    for where, text in texts:
        for secret in secrets:
            if secret.value in text:
                excerpt = _excerpt(text, secret.value)
                problems.append(
                    f"the secret `{secret.field}` appears in {where}: {excerpt!r}; never put "
                    "config values marked secret in reprs, log records or error texts "
                    "(show `***` instead)"
                )
    return problems


def log_texts(records: Iterable[logging.LogRecord]) -> list[tuple[str, str]]:
    return [
        (f"a log record of logger {r.name!r} at {r.levelname}", record_text(r)) for r in records
    ]


def _excerpt(text: str, value: str, width: int = 60) -> str:
    at = text.find(value)
    start, end = max(0, at - width), at + len(value) + width
    return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
