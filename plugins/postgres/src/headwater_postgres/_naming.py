"""Column and table names from event keys, the way Segment's warehouses name them.

``userId`` -> ``user_id``, ``Order Completed`` -> ``order_completed``, nested keys joined with
``_`` (``context.page.url`` -> ``context_page_url``). Only ``[a-z0-9_]`` survives, a leading
digit gets a ``_`` in front, and a name over PostgreSQL's 63-byte limit is cut and ends with
a hash of the whole name, so two long keys never share a column by accident.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER = 63

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_INVALID = re.compile(r"[^a-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")

_cache: dict[str, str] = {}
_CACHE_LIMIT = 50_000


def snake(key: str) -> str:
    """One key as a name part: ``firstName`` -> ``first_name``, ``Page URL`` -> ``page_url``."""
    found = _cache.get(key)
    if found is not None:
        return found
    text = _CAMEL.sub("_", key).lower()
    text = _UNDERSCORES.sub("_", _INVALID.sub("_", text)).strip("_")
    if len(_cache) < _CACHE_LIMIT:
        _cache[key] = text
    return text


def identifier(name: str) -> str:
    """``name`` made a valid, unquoted-safe PostgreSQL identifier of at most 63 bytes."""
    if not name:
        name = "_"
    if name[0].isdigit():
        name = "_" + name
    if len(name) > MAX_IDENTIFIER:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[: MAX_IDENTIFIER - 9] + "_" + digest
    return name


def table_for_event(event: str) -> str:
    """The per-event table of a track event name."""
    return identifier(snake(event) or "event")
