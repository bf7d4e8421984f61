"""The conformance suite over broken_connectors.py, as a connector author would write it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import broken_connectors as bc
import pytest

from headwater_spec.conformance import DestinationConformance, SourceConformance

KEY = "hw-secret-key-8842"


class _Destination(DestinationConformance):
    def config(self) -> dict[str, Any]:
        return {"api_key": KEY, "timeout": 2}  # the hang checks wait it out


class TestGood(_Destination):
    connector = bc.GoodDestination


class TestNoDirection(_Destination):
    connector = bc.NoDirectionDestination


class TestSloppySpec(_Destination):
    connector = bc.SloppySpecDestination


class TestRaising(_Destination):
    connector = bc.RaisingDestination


class TestLeaky(_Destination):
    connector = bc.LeakyDestination


class TestHeaderLeaky(_Destination):
    connector = bc.HeaderLeakyDestination

    def config(self) -> dict[str, Any]:
        return {**super().config(), "headers": {"Authorization": "Bearer hw-header-token-5150"}}


class TestCareless(_Destination):
    connector = bc.CarelessDestination


class _Source(SourceConformance):
    settle = 1.0

    @pytest.fixture(autouse=True)
    def _upstream(self) -> Iterator[None]:
        bc.UPSTREAM.clear()
        yield
        bc.UPSTREAM.clear()

    async def produce(self, count: int) -> None:
        first = len(bc.UPSTREAM)
        bc.UPSTREAM.extend({"id": f"rec-{n}"} for n in range(first, first + count))


class TestCheckpointing(_Source):
    connector = bc.CheckpointingSource


class TestForgetful(_Source):
    connector = bc.ForgetfulSource


class TestAmnesiac(_Source):
    connector = bc.AmnesiacSource
