"""Fixtures for the Mixpanel destination tests: the contract server and a host context."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mixpanel_contract import TOKEN, MixpanelAPI

from headwater_mixpanel import MixpanelDestination
from headwater_spec.conformance import MemoryContext


@pytest.fixture
def mixpanel_api() -> Iterator[MixpanelAPI]:
    with MixpanelAPI(token=TOKEN, service_account=("sa.user", "sa-s3cret")) as server:
        yield server
    server.assert_no_violations()


@pytest.fixture
async def make_destination(
    mixpanel_api: MixpanelAPI,
) -> AsyncIterator[Callable[..., MixpanelDestination]]:
    """Build destinations pointed at the contract server (``endpoint`` override)."""
    made: list[MixpanelDestination] = []

    def make(
        region: str = "us", endpoint: str | None = "server", **config: Any
    ) -> MixpanelDestination:
        url = mixpanel_api.url if endpoint == "server" else endpoint
        options = {"project_token": TOKEN, **config}
        dest = MixpanelDestination(options, MemoryContext(region=region, endpoint=url))
        made.append(dest)
        return dest

    yield make
    for dest in made:
        await dest.close()
