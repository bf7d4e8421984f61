"""The `customerio` destination: Customer.io's Track API, per region."""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from ._destination import CustomerIODestination
from ._records import ulid

__all__ = ["CustomerIODestination", "register_connectors", "ulid"]


@hookimpl
def register_connectors(register: Register) -> None:
    register(CustomerIODestination)
