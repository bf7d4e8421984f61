"""The customerio spec: what `headwater connectors spec customerio` and `validate` rely on."""

from __future__ import annotations

from importlib.metadata import entry_points

import jsonschema
import pytest

from headwater_customerio import CustomerIODestination
from headwater_spec import PROJECT_NAME, Connector, validate_spec

SPEC = CustomerIODestination.spec


def test_spec_satisfies_the_meta_schema() -> None:
    validate_spec(SPEC.to_dict(), owner="headwater_customerio/spec.json")
    assert SPEC.name == "customerio"
    assert SPEC.direction == "out"


def test_regions_and_endpoints_are_customerios_documented_hosts() -> None:
    assert {r: s.endpoint for r, s in SPEC.regions.items()} == {
        "us": "https://track.customer.io",
        "eu": "https://track-eu.customer.io",
    }
    assert SPEC.default_region == "us"


def test_secrets_are_marked() -> None:
    assert SPEC.secret_fields() == {"api_key"}


def test_delivery_hints_follow_the_track_api_limits() -> None:
    assert SPEC.delivery.max_batch_bytes < 500 * 1000
    assert SPEC.delivery.rate_limit == 100
    assert SPEC.delivery.dedupes_on_message_id is True
    assert SPEC.event_types == ["track", "identify", "page", "screen", "alias"]


@pytest.mark.parametrize("example", SPEC.examples.valid)
def test_valid_examples_validate(example: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(SPEC.config).validate(example)


@pytest.mark.parametrize("example", SPEC.examples.invalid)
def test_invalid_examples_fail(example: dict[str, object]) -> None:
    assert not jsonschema.Draft202012Validator(SPEC.config).is_valid(example)


def test_the_entry_point_registers_the_destination() -> None:
    [ep] = [e for e in entry_points(group=PROJECT_NAME) if e.name == "customerio"]
    registered: list[type[Connector]] = []
    ep.load().register_connectors(register=registered.append)
    assert registered == [CustomerIODestination]
