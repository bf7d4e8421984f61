"""The body signature: ``sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the
secret>``, the scheme GitHub uses for its webhooks, so receivers can reuse their code.

A receiver verifies by recomputing the HMAC over the raw body it received (before any JSON
parsing) and comparing in constant time; ``verify`` does exactly that. The body carries
``sentAt``, so a receiver that also wants to refuse replays can check its age.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, body: bytes, header_value: str) -> bool:
    """True when ``header_value`` is the signature of ``body`` under ``secret``."""
    return hmac.compare_digest(sign(secret, body), header_value.strip())
