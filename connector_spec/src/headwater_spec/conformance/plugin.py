"""The pytest plugin (entry point ``pytest11: headwater``) that ships with headwater-spec.

Installing headwater-spec makes its fixtures available to every pytest run, so an author's
conformance class needs no conftest: ``headwater_server`` (the suite's loopback HTTP server)
and ``headwater_context`` (an in-memory host context). It also registers the
``headwater_conformance`` marker the suite's tests carry and prints the suite version in
the report header, so a CI log shows which checks a connector passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._context import MemoryContext
from ._server import ServiceServer
from ._version import CHECKS_SPEC_VERSION, SUITE_VERSION

MARKER = "headwater_conformance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: a check of the Headwater connector conformance suite"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"headwater conformance suite {SUITE_VERSION} "
        f"(checks connector spec_version {CHECKS_SPEC_VERSION})"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every check of a conformance class, so `-m headwater_conformance` selects them."""
    from ._base import ConnectorConformance

    for item in items:
        cls = getattr(item, "cls", None)
        if isinstance(cls, type) and issubclass(cls, ConnectorConformance):
            item.add_marker(MARKER)


@pytest.fixture
def headwater_server() -> Iterator[ServiceServer]:
    """A started loopback HTTP server that plays the connector's service."""
    with ServiceServer() as server:
        yield server


@pytest.fixture
def headwater_context(tmp_path: Path, headwater_server: ServiceServer) -> MemoryContext:
    """An in-memory host context in ``tmp_path``, its ``endpoint`` the suite's server."""
    return MemoryContext(data_dir=tmp_path, endpoint=headwater_server.url)
