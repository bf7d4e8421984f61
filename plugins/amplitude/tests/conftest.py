"""Fixtures for the Amplitude destination tests: the contract server and a host context."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from amplitude_contract import API_KEY, AmplitudeAPI

from headwater_amplitude import AmplitudeDestination
from headwater_spec.conformance import MemoryContext


@pytest.fixture
def amplitude_api() -> Iterator[AmplitudeAPI]:
    with AmplitudeAPI(api_key=API_KEY) as server:
        yield server
    server.assert_no_violations()


@pytest.fixture
async def make_destination(
    amplitude_api: AmplitudeAPI,
) -> AsyncIterator[Callable[..., AmplitudeDestination]]:
    """Build destinations pointed at the contract server (``endpoint`` override)."""
    made: list[AmplitudeDestination] = []

    def make(
        region: str = "us", endpoint: str | None = "server", **config: Any
    ) -> AmplitudeDestination:
        url = amplitude_api.url if endpoint == "server" else endpoint
        dest = AmplitudeDestination(
            {"api_key": API_KEY, **config}, MemoryContext(region=region, endpoint=url)
        )
        made.append(dest)
        return dest

    yield make
    for dest in made:
        await dest.close()
