"""The `mixpanel` destination: Mixpanel's Import Events and User Profiles APIs, per region."""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from ._destination import MixpanelDestination
from ._records import insert_id

__all__ = ["MixpanelDestination", "insert_id", "register_connectors"]


@hookimpl
def register_connectors(register: Register) -> None:
    register(MixpanelDestination)
