"""The `webhook` destination: POSTs batches of events as JSON to a URL, optionally signed.

See README.md for the body shape and the signature; ``verify`` checks a signature on the
receiving side.
"""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from ._destination import WebhookDestination
from ._outcomes import outcomes_for, parse_retry_after
from ._signature import sign, verify

__all__ = [
    "WebhookDestination",
    "outcomes_for",
    "parse_retry_after",
    "register_connectors",
    "sign",
    "verify",
]


@hookimpl
def register_connectors(register: Register) -> None:
    register(WebhookDestination)
