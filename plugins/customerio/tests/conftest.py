"""Fixtures for the Customer.io destination tests: the contract server and a host context."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from customerio_contract import API_KEY, SITE_ID, CustomerIOAPI

from headwater_customerio import CustomerIODestination
from headwater_spec.conformance import MemoryContext


@pytest.fixture
def customerio_api() -> Iterator[CustomerIOAPI]:
    with CustomerIOAPI() as server:
        yield server
    server.assert_no_violations()


@pytest.fixture
async def make_destination(
    customerio_api: CustomerIOAPI,
) -> AsyncIterator[Callable[..., CustomerIODestination]]:
    """Build destinations pointed at the contract server (``endpoint`` override)."""
    made: list[CustomerIODestination] = []

    def make(
        region: str = "us", endpoint: str | None = "server", **config: Any
    ) -> CustomerIODestination:
        url = customerio_api.url if endpoint == "server" else endpoint
        options = {"site_id": SITE_ID, "api_key": API_KEY, **config}
        dest = CustomerIODestination(options, MemoryContext(region=region, endpoint=url))
        made.append(dest)
        return dest

    yield make
    for dest in made:
        await dest.close()
