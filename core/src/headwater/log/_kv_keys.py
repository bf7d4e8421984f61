"""Side-table keys (arbitrary bytes) as JetStream KV keys (a restricted alphabet).

A side-table entry ``(table, key)`` becomes the KV key ``<table>.<escaped key>``: one
subject token per table, so a table is listed with the filter ``<table>.>``. Bytes outside
``[A-Za-z0-9_-]`` are written ``=XX`` (hex). The mapping is byte by byte, so a key prefix
stays a prefix of the escaped key and names like ``checkpoints.postgres-orders`` stay
readable in ``nats kv ls``. The empty key is the lone ``=``, which no escape produces.
"""

from __future__ import annotations

import re

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TABLE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPE = [chr(b) if b in _PLAIN else f"={b:02X}" for b in range(256)]


def escape(key: bytes) -> str:
    """The KV-safe form of a side-table key."""
    if not key:
        return "="
    return "".join([_ESCAPE[b] for b in key])


def unescape(text: str) -> bytes:
    """The side-table key of an escaped form."""
    if text == "=":
        return b""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "=":
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(ch))
            i += 1
    return bytes(out)


def table_token(table: bytes) -> str:
    """The table's subject token; table names are fixed identifiers like ``dead_letters``."""
    name = table.decode("ascii", "replace")
    if not _TABLE.match(name):
        raise ValueError(f"side table name {table!r} must match [A-Za-z0-9_-]+")
    return name


def kv_key(table: bytes, key: bytes) -> str:
    return f"{table_token(table)}.{escape(key)}"


def split_kv_key(name: str) -> tuple[bytes, bytes]:
    table, _, escaped = name.partition(".")
    return table.encode(), unescape(escaped)
