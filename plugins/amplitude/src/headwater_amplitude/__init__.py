"""The `amplitude` destination: Amplitude's HTTP V2 API, per region."""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from ._destination import AmplitudeDestination

__all__ = ["AmplitudeDestination", "register_connectors"]


@hookimpl
def register_connectors(register: Register) -> None:
    register(AmplitudeDestination)
