"""What a destination says happened to each event of a batch."""

from __future__ import annotations

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
