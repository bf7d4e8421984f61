"""Reading a request body: decompress within a cap, then decode JSON.

The decompressed size is capped while inflating (``max_length``), so a gzip bomb costs at
most the cap in memory and time, never its expanded size.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()


class BodyError(Exception):
    """A body that cannot be used; ``status`` and ``code`` go to the client as they are."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def too_large(limit: int) -> BodyError:
    return BodyError(
        413,
        "request_too_large",
        f"the request body is over {limit} bytes (after decompression); send smaller batches",
    )


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body as plain bytes, at most ``limit`` of them."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise too_large(limit)
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BodyError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, "invalid_encoding", f"the {encoding} body is corrupt: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    if not inflater.eof:
        raise BodyError(400, "invalid_encoding", f"the {encoding} body is truncated")
    return out


def decode_object(data: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    if not data.strip():
        raise BodyError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        value = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise BodyError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BodyError(400, "invalid_body", f"the body must be a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"
