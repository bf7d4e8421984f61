"""The connector spec meta-schema: every spec shipped in this repo passes it, broken specs
are refused with a message naming the owner and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from headwater_spec import ConnectorSpec, SpecError, meta_schema, secret_fields, validate_spec

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(ROOT.glob("plugins/*/src/*/spec*.json"))

GOOD: dict[str, Any] = {
    "name": "example",
    "version": "1.2.0",
    "direction": "out",
    "regions": {
        "us": {"endpoint": "https://api.example.com"},
        "eu": {"endpoint": "https://api.eu.example.com"},
    },
    "default_region": "us",
    "config": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "secret": True}, "retries": {"type": "integer"}},
    },
    "event_types": ["track", "identify"],
    "delivery": {"max_batch": 50, "rate_limit": 10, "dedupes_on_message_id": True},
    "examples": {"valid": [{"token": "t"}], "invalid": [{}]},
}


def test_the_meta_schema_is_itself_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(meta_schema())


def test_the_repo_ships_specs_to_check() -> None:
    assert any(p.parent.name == "headwater_file" for p in SHIPPED), SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parents[2].name}/{p.name}")
def test_every_shipped_spec_passes_the_meta_schema(path: Path) -> None:
    spec = ConnectorSpec.from_json(path.read_bytes(), owner=str(path))
    assert spec.effective_default_region() in spec.regions


def test_a_complete_spec_loads_into_the_struct() -> None:
    spec = ConnectorSpec.from_dict(copy.deepcopy(GOOD))
    assert spec.direction == "out"
    assert spec.endpoint_for("eu") == "https://api.eu.example.com"
    assert spec.endpoint_for("jp") is None
    assert spec.secret_fields() == {"token"} == secret_fields(GOOD["config"])
    assert spec.delivery.max_batch == 50 and spec.delivery.dedupes_on_message_id
    assert spec.event_types == ["track", "identify"]


def _broken(change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    change(spec)
    return spec


BROKEN = [
    pytest.param(
        lambda s: s.pop("direction"), "/", "'direction' is a required", id="missing-direction"
    ),
    pytest.param(lambda s: s.update(direction="both"), "/direction", "'both'", id="bad-direction"),
    pytest.param(
        lambda s: s["regions"].update(mars={}),
        "/regions",
        "unknown region 'mars'",
        id="unknown-region",
    ),
    pytest.param(lambda s: s.update(regions={}), "/regions", "`regions`", id="no-region"),
    pytest.param(
        lambda s: s["regions"]["eu"].update(endpoint="api.eu.example.com"),
        "/regions/eu/endpoint",
        "regions.eu.endpoint",
        id="endpoint-without-scheme",
    ),
    pytest.param(
        lambda s: s.update(config={"type": "object", "properties": 5}),
        "/config/properties",
        "not a valid JSON Schema",
        id="config-properties-not-object",
    ),
    pytest.param(
        lambda s: s.update(config={"type": "object", "required": "token"}),
        "/config/required",
        "not a valid JSON Schema",
        id="config-required-not-array",
    ),
    pytest.param(
        lambda s: s.update(config={"type": "object", "properties": {"a": {"type": "strng"}}}),
        "/config/properties/a/type",
        "not a valid JSON Schema",
        id="config-unknown-type",
    ),
    pytest.param(lambda s: s.update(config="token"), "/config", "`config`", id="config-not-object"),
    pytest.param(
        lambda s: s.update(config={"type": "string"}),
        "/config/type",
        "`config.type`",
        id="config-not-an-object-schema",
    ),
    pytest.param(
        lambda s: s.update(default_region="jp"),
        "/default_region",
        "'jp'",
        id="default-region-not-declared",
    ),
    pytest.param(
        lambda s: s.update(event_types=["track", "purchase"]),
        "/event_types/1",
        "'purchase'",
        id="unknown-event-type",
    ),
    pytest.param(lambda s: s.update(name="Example Connector"), "/name", "`name`", id="bad-name"),
    pytest.param(lambda s: s.update(colour="blue"), "/", "'colour'", id="unknown-key"),
    pytest.param(
        lambda s: s["delivery"].update(max_batch=0),
        "/delivery/max_batch",
        "`delivery.max_batch`",
        id="zero-batch",
    ),
    pytest.param(
        lambda s: s["examples"]["valid"].append({"retries": 1}),
        "/examples/valid",
        "listed as valid",
        id="valid-example-fails",
    ),
]


@pytest.mark.parametrize(("change", "pointer", "message"), BROKEN)
def test_broken_spec_is_refused_naming_owner_and_field(
    change: Any, pointer: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        ConnectorSpec.from_dict(_broken(change), owner="headwater-example")
    error = caught.value
    assert error.pointer == pointer
    assert str(error).startswith(f"headwater-example at {pointer}: ")
    assert message in str(error)


def test_unknown_region_message_lists_the_known_regions() -> None:
    with pytest.raises(SpecError, match=r"known regions: us, eu, .*global, any"):
        validate_spec(_broken(lambda s: s["regions"].update(mars={})))


def test_spec_that_is_not_json_is_refused_naming_the_file() -> None:
    with pytest.raises(SpecError, match=r"^pkg/spec.json: spec.json is not valid JSON"):
        ConnectorSpec.from_json("{", owner="pkg/spec.json")


def test_spec_round_trips_through_its_dict_form() -> None:
    spec = ConnectorSpec.from_dict(copy.deepcopy(GOOD))
    again = ConnectorSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
