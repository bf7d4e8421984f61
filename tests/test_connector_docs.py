"""docs/connectors.md documents the whole connector contract, and cannot drift from it.

Read from the code, not listed by hand: the hook specifications, every field of the spec
meta-schema (nested ones as dotted paths in the spec-format table), the region names, the
methods and properties of the base types and contexts, and every check, attribute, hook
method and fixture of the conformance suite. Adding any of them without documenting it
fails here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, ClassVar, get_origin

import pytest

import headwater_spec
from headwater_spec import (
    Connector,
    ConnectorContext,
    Destination,
    HeadwaterSpecs,
    HttpRequest,
    HttpResponse,
    PushContext,
    Source,
    SourceContext,
    meta_schema,
)
from headwater_spec.conformance import (
    ConnectorConformance,
    ContractServer,
    DestinationConformance,
    SourceConformance,
    plugin,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "connectors.md"
TEXT = DOC.read_text("utf-8")


def section(title: str) -> str:
    """The text of the `## title` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/connectors.md has no `## {title}` section"
    return match.group(1)


def undocumented(names: list[str], text: str = TEXT) -> list[str]:
    return [n for n in names if f"`{n}`" not in text and f"`{n}(" not in text]


def hook_signatures() -> list[str]:
    found = []
    for name, func in inspect.getmembers(HeadwaterSpecs, inspect.isfunction):
        if hasattr(func, "headwater_spec"):
            params = [p for p in inspect.signature(func).parameters if p != "self"]
            found.append(f"{name}({', '.join(params)})")
    return found


def spec_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every property of the meta-schema as a dotted path (`regions.<region>.endpoint`)."""
    fields = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        fields.append(path)
        if name == "config" and not prefix:
            continue
        fields.extend(spec_fields(sub, path + "."))
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in extra:
            fields.extend(spec_fields(extra, f"{path}.<{name.rstrip('s')}>."))
    return fields


def public_members(cls: type) -> list[str]:
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__repr__"):
            continue
        if callable(value) or isinstance(value, property):
            names.append(name)
    return names


def test_every_hook_is_documented_with_its_signature() -> None:
    hooks = hook_signatures()
    assert hooks, "no hook specifications found on HeadwaterSpecs"
    missing = undocumented(hooks, section("The hook"))
    assert not missing, f"hooks missing from docs/connectors.md `## The hook`: {missing}"


def test_every_spec_field_has_a_row_in_the_spec_table() -> None:
    text = section("The spec format")
    fields = [*spec_fields(meta_schema()), "config.properties.<key>.secret"]
    missing = [f for f in fields if not re.search(rf"^\| `{re.escape(f)}` \|", text, re.M)]
    assert not missing, (
        f"spec fields without a row in the `## The spec format` table: {missing}; add "
        "`| `<field>` | required | meaning |`"
    )


def test_every_region_name_is_documented() -> None:
    regions = meta_schema()["properties"]["regions"]["propertyNames"]["enum"]
    missing = undocumented(regions, section("The spec format"))
    assert not missing, f"region names missing from `## The spec format`: {missing}"


@pytest.mark.parametrize(
    "cls",
    [Connector, Destination, Source, ConnectorContext, SourceContext, PushContext],
    ids=lambda c: c.__name__,
)
def test_every_base_type_member_is_documented(cls: type) -> None:
    names = [n for n in public_members(cls) if n not in ("__init__", "__repr__")]
    missing = undocumented(names, section("The base types"))
    assert not missing, f"{cls.__name__} members missing from `## The base types`: {missing}"


@pytest.mark.parametrize("cls", [HttpRequest, HttpResponse], ids=lambda c: c.__name__)
def test_every_push_http_field_is_documented(cls: Any) -> None:
    names = [*cls.__struct_fields__, *(n for n in public_members(cls) if n != "__init__")]
    missing = undocumented(names, section("The base types"))
    assert not missing, f"{cls.__name__} fields missing from `## The base types`: {missing}"


def test_every_contract_export_is_mentioned() -> None:
    skip = {"Route", "Direction", "EventType", "EVENT_CLASSES", "EVENT_TYPES", "BaseEvent"}
    skip |= {"Examples", "RegionSpec", "DeliveryHints", "Event", "Outcome", "SpecError"}
    names = [n for n in headwater_spec.__all__ if n not in skip]
    missing = [n for n in names if n not in TEXT]
    assert not missing, f"headwater_spec exports not mentioned in docs/connectors.md: {missing}"


SUITES = [DestinationConformance, SourceConformance]


@pytest.mark.parametrize("suite", SUITES, ids=lambda c: c.__name__)
def test_every_conformance_check_is_documented(suite: type) -> None:
    checks = sorted(n for n in dir(suite) if n.startswith("test_"))
    missing = undocumented(checks, section("The conformance suite"))
    assert not missing, f"{suite.__name__} checks missing from the suite's docs: {missing}"


@pytest.mark.parametrize("suite", SUITES, ids=lambda c: c.__name__)
def test_every_conformance_setting_is_documented(suite: type) -> None:
    settings: set[str] = set(suite.AUTHOR_METHODS)  # type: ignore[attr-defined]
    for cls in suite.__mro__:
        if issubclass(cls, ConnectorConformance):
            annotations = inspect.get_annotations(cls, eval_str=True)
            settings |= {
                n for n, t in annotations.items() if get_origin(t) is ClassVar and n.islower()
            }
    assert {"connector", "config"} <= settings
    for name in suite.AUTHOR_METHODS:  # type: ignore[attr-defined]
        assert callable(getattr(suite, name)), f"{suite.__name__}.AUTHOR_METHODS: {name}?"
    missing = undocumented(sorted(settings), section("The conformance suite"))
    assert not missing, f"{suite.__name__} settings missing from the suite's docs: {missing}"


def test_every_plugin_fixture_is_documented() -> None:
    fixtures = [
        name
        for name, value in vars(plugin).items()
        if name.startswith("headwater_") and callable(value)
    ]
    assert {"headwater_server", "headwater_context"} <= set(fixtures)
    missing = undocumented(fixtures, section("The conformance suite"))
    assert not missing, f"pytest plugin fixtures missing from the suite's docs: {missing}"


def test_every_contract_server_method_is_documented() -> None:
    names = [n for n in public_members(ContractServer) if n != "__init__"]
    assert {"answer", "violation", "fail_next"} <= set(names)
    missing = undocumented(names, section("The conformance suite"))
    assert not missing, f"ContractServer methods missing from the suite's docs: {missing}"


def test_the_init_command_is_documented_with_every_option() -> None:
    from headwater.cli._init import init_connector

    options = [opt for p in init_connector.params for opt in getattr(p, "opts", [])]
    text = section("Start from the template")
    missing = [o for o in options if o.startswith("--") and o not in text]
    assert not missing, f"`headwater init connector` options missing from the docs: {missing}"
