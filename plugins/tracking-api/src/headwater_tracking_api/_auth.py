"""Write keys: where SDKs put them, and a constant-time match against the configured ones.

Three forms, as the Segment and Customer.io SDKs send them: HTTP Basic with the key as the
user (the password is ignored; SDKs send it empty), ``Authorization: Bearer <key>``, and
``"writeKey"`` in the JSON body (browsers' beacons cannot set headers).
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from collections.abc import Sequence


class KeyProblem(Exception):
    """An Authorization header that cannot be read; the message says what is wrong."""


def key_from_header(authorization: str) -> str | None:
    """The write key in an Authorization header, or None when there is no header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic":
        try:
            decoded = b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise KeyProblem("the Basic credentials are not valid base64 of `key:`") from None
        return decoded.partition(":")[0]
    if scheme == "bearer":
        return value
    raise KeyProblem(
        "unsupported Authorization scheme; send the write key as the Basic user, "
        "as a Bearer token or as `writeKey` in the body"
    )


def key_matches(candidate: str, keys: Sequence[bytes]) -> bool:
    """Compare against every configured key in constant time (no early exit)."""
    given = candidate.encode("utf-8", "surrogatepass")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found
