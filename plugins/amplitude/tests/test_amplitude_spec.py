"""The amplitude spec: what `headwater connectors spec amplitude` and `validate` rely on."""

from __future__ import annotations

from importlib.metadata import entry_points

import jsonschema
import pytest

from headwater_amplitude import AmplitudeDestination
from headwater_spec import PROJECT_NAME, Connector, validate_spec

SPEC = AmplitudeDestination.spec


def test_spec_satisfies_the_meta_schema() -> None:
    validate_spec(SPEC.to_dict(), owner="headwater_amplitude/spec.json")
    assert SPEC.name == "amplitude"
    assert SPEC.direction == "out"


def test_regions_and_endpoints_are_amplitudes_documented_hosts() -> None:
    assert {r: s.endpoint for r, s in SPEC.regions.items()} == {
        "us": "https://api2.amplitude.com",
        "eu": "https://api.eu.amplitude.com",
    }
    assert SPEC.default_region == "us"


def test_secrets_are_marked() -> None:
    assert SPEC.secret_fields() == {"api_key"}


def test_delivery_hints_follow_the_http_v2_limits() -> None:
    assert SPEC.delivery.max_batch == 2000
    assert SPEC.delivery.dedupes_on_message_id is True
    assert SPEC.event_types == ["track", "identify", "page", "screen"]


@pytest.mark.parametrize("example", SPEC.examples.valid)
def test_valid_examples_validate(example: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(SPEC.config).validate(example)


@pytest.mark.parametrize("example", SPEC.examples.invalid)
def test_invalid_examples_fail(example: dict[str, object]) -> None:
    assert not jsonschema.Draft202012Validator(SPEC.config).is_valid(example)


def test_the_entry_point_registers_the_destination() -> None:
    [ep] = [e for e in entry_points(group=PROJECT_NAME) if e.name == "amplitude"]
    registered: list[type[Connector]] = []
    ep.load().register_connectors(register=registered.append)
    assert registered == [AmplitudeDestination]
