"""Checks of a connector's spec, as plain functions returning what to fix.

They need no pytest, so the suite, the repository's own tests and tools can all call them.
Each problem is one sentence naming the connector, the field and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jsonschema
import msgspec

from .._connector import Connector, Destination, Source
from .._secrets import marked_schemas
from .._spec import SPEC_VERSION, ConnectorSpec, SpecError

SECRET_NAME = re.compile(r"token|secret|password|passwd|passphrase|credential|api_?key|(^|_)keys?$")
"""Config key names that hold secrets in practice (`api_key`, `write_keys`, `auth_token`...)."""

NOT_SECRET_NAME = re.compile(
    r"(primary|partition|sort|cursor|idempotency|dedupe?|join|foreign|group|id)_keys?$"
    r"|_(url|uri|endpoint|header|field|column|path|file|name|id)s?$"
)
"""Names that match SECRET_NAME but say where a value is, not the value (`token_url`)."""

REGION_WITHOUT_ENDPOINT = frozenset({"any"})
"""`any` is the one region whose address the operator supplies (a database they host)."""


def connector_label(cls: type[Connector]) -> str:
    spec = getattr(cls, "spec", None)
    if isinstance(spec, ConnectorSpec):
        name = spec.name
    else:
        name = spec.get("name", "?") if isinstance(spec, dict) else "?"
    return f"connector {name!r} ({cls.__module__}.{cls.__qualname__})"


def load_spec(cls: type[Connector]) -> tuple[ConnectorSpec | None, list[str]]:
    """The class's spec, validated against the meta-schema, or the problems."""
    label = f"{cls.__module__}.{cls.__qualname__}"
    spec = getattr(cls, "spec", None)
    if isinstance(spec, dict):
        data: Any = spec
    elif isinstance(spec, ConnectorSpec):
        data = msgspec.to_builtins(spec)
    else:
        return None, [
            f"{label} has no `spec`; ship a spec.json in the package and set "
            "`spec = ConnectorSpec.from_package(__package__)` on the class"
        ]
    try:
        loaded = ConnectorSpec.from_dict(data, owner=f"{label} spec")
    except SpecError as exc:
        return None, [f"{exc} (fix spec.json; the format is in docs/connectors.md)"]
    except msgspec.ValidationError as exc:
        return None, [f"{label} spec: {exc} (fix spec.json)"]
    return loaded, []


def direction_problems(cls: type[Connector], spec: ConnectorSpec) -> list[str]:
    label = connector_label(cls)
    if issubclass(cls, Destination) and spec.direction != "out":
        return [
            f"{label} is a Destination but spec.json says direction {spec.direction!r}; "
            'set `"direction": "out"`'
        ]
    if issubclass(cls, Source) and spec.direction != "in":
        return [
            f"{label} is a Source but spec.json says direction {spec.direction!r}; "
            'set `"direction": "in"`'
        ]
    if not issubclass(cls, (Source, Destination)):
        return [f"{label} derives from neither Source nor Destination; subclass one of them"]
    return []


def version_problems(cls: type[Connector], spec: ConnectorSpec, suite_version: str) -> list[str]:
    if spec.spec_version == SPEC_VERSION:
        return []
    return [
        f"{connector_label(cls)} declares spec_version {spec.spec_version} but this "
        f"conformance suite (headwater-spec {suite_version}) checks spec_version "
        f"{SPEC_VERSION}; pin the headwater-spec version the connector was written for"
    ]


def secret_problems(
    cls: type[Connector], spec: ConnectorSpec, not_secret: Iterable[str] = ()
) -> list[str]:
    """Config keys named like secrets must be marked ``"secret": true`` (or hold marked
    values, as `headers` whose values are marked); marked values must be strings, arrays or
    objects of them."""
    label = connector_label(cls)
    props = spec.config.get("properties", {})
    schemas = marked_schemas(spec.config)
    holding = {path[0] for path in schemas if path}
    allowed = set(not_secret)
    problems = []
    for key in sorted(props) if isinstance(props, dict) else ():
        if key in holding or key in allowed or not _looks_secret(key):
            continue
        problems.append(
            f"{label}: config field `{key}` looks like a secret but is not marked; add "
            f'`"secret": true` to `config.properties.{key}` in spec.json (or, if it is '
            "not a secret, list it in `not_secret` of your conformance test class)"
        )
    for path, schema in sorted(schemas.items()):
        kind = schema.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        if not kinds & {"string", "array", "object"}:
            where = ".".join(path) or "the config"
            problems.append(
                f'{label}: secret field `{where}` has type {kind!r}; give it `"type": '
                '"string"` so operators can pass it as a `${ENV_VAR}` reference'
            )
    return problems


def example_problems(cls: type[Connector], spec: ConnectorSpec) -> list[str]:
    """Examples must exist, and validate (or fail) as declared."""
    label = connector_label(cls)
    problems = []
    validator = jsonschema.Draft202012Validator(spec.config)
    if not spec.examples.valid:
        problems.append(
            f"{label}: spec.json has no `examples.valid`; add at least one working config "
            "(docs and the suite use it)"
        )
    if not spec.examples.invalid:
        problems.append(
            f"{label}: spec.json has no `examples.invalid`; add at least one config the "
            "schema must refuse (a missing required key, a wrong type)"
        )
    for example in spec.examples.valid:
        error = next(iter(validator.iter_errors(example)), None)
        if error is not None:
            problems.append(
                f"{label}: example config {_show(example, spec)} is listed in "
                f"`examples.valid` but the config schema refuses it: {error.message}; fix "
                "the example or the schema"
            )
    for example in spec.examples.invalid:
        if validator.is_valid(example):
            problems.append(
                f"{label}: example config {_show(example, spec)} is listed in "
                "`examples.invalid` but the config schema accepts it; tighten the schema "
                "(`required`, `additionalProperties: false`, `minLength`...) or move the example"
            )
    return problems


def region_problems(cls: type[Connector], spec: ConnectorSpec) -> list[str]:
    """Every region but `any` names the service's endpoint there."""
    label = connector_label(cls)
    return [
        f'{label}: region `{region}` has no endpoint; add `"endpoint": "https://..."` '
        f"(the service's address in `{region}`) to `regions.{region}` in spec.json, or "
        "declare the region `any` if the operator supplies the address"
        for region, entry in spec.regions.items()
        if region not in REGION_WITHOUT_ENDPOINT and not entry.endpoint
    ]


def spec_problems(
    cls: type[Connector], *, suite_version: str, not_secret: Iterable[str] = ()
) -> list[str]:
    """Every problem of the connector's spec, or an empty list."""
    spec, problems = load_spec(cls)
    if spec is None:
        return problems
    return [
        *direction_problems(cls, spec),
        *version_problems(cls, spec, suite_version),
        *secret_problems(cls, spec, not_secret),
        *example_problems(cls, spec),
        *region_problems(cls, spec),
    ]


def _looks_secret(key: str) -> bool:
    name = key.lower()
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def _show(example: dict[str, Any], spec: ConnectorSpec) -> str:
    return repr(spec.redact(example))
