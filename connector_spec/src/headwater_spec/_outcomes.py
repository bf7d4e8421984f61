"""What a destination says happened to each event of a batch."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec


class Delivered(msgspec.Struct, frozen=True, tag="delivered"):
    """The service accepted the event."""


class Retry(msgspec.Struct, frozen=True, tag="retry"):
    """A passing failure (429, 5xx, timeout): try again later.

    ``retry_after`` is the number of seconds the service asked for, when it said one.
    """

    reason: str
    retry_after: float | None = None


class Rejected(msgspec.Struct, frozen=True, tag="rejected"):
    """The service refused the event for good; it goes to the dead-letter table."""

    reason: str


Outcome = Delivered | Retry | Rejected
DELIVERED = Delivered()


def log_outcomes(logger: logging.Logger, name: str, outcomes: Sequence[Outcome]) -> None:
    """One log line for what became of a batch, under the connector's ``name``: DEBUG when
    every event was delivered, else WARNING with the counts and one reason, the first
    retry's (else the first rejection's). Reasons must already be free of secrets (see
    ``SecretRedactor``)."""
    retry = [o for o in outcomes if isinstance(o, Retry)]
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    delivered = len(outcomes) - len(retry) - len(rejected)
    if retry or rejected:
        logger.warning(
            "%s: %d delivered, %d to retry, %d rejected; first: %s",
            name,
            delivered,
            len(retry),
            len(rejected),
            (retry or rejected)[0].reason,
        )
    else:
        logger.debug("%s: %d delivered", name, delivered)
