"""The connector's spec and registration."""

from __future__ import annotations

import jsonschema
import pytest

from headwater_spec import ConnectorSpec
from headwater_tracking_api import BATCH_PATHS, EVENT_PATHS, TrackingApiSource


def test_spec_is_valid_and_declares_a_source() -> None:
    spec = ConnectorSpec.from_package("headwater_tracking_api")
    assert spec.name == "tracking-api"
    assert spec.direction == "in"
    assert "write_keys" in spec.secret_fields()


@pytest.mark.parametrize("example", TrackingApiSource.spec.examples.invalid)
def test_invalid_examples_fail_the_schema(example: dict[str, object]) -> None:
    errors = list(
        jsonschema.Draft202012Validator(TrackingApiSource.spec.config).iter_errors(example)
    )
    assert errors


def test_every_segment_path_is_routed() -> None:
    assert set(EVENT_PATHS) == {"track", "identify", "page", "screen", "group", "alias"}
    assert "/v1/batch" in BATCH_PATHS


def test_the_plugin_is_found_through_its_entry_point() -> None:
    from headwater.plugins import load_plugins

    registry = load_plugins()
    assert registry.get("tracking-api").cls is TrackingApiSource
