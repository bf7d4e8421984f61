"""JSON Schemas of the config: the framework sections and keys, and the whole file.

The framework parts are generated from the config Structs (so they cannot drift from what
the loader accepts) and tightened with the rules the Structs do not express (known regions,
event types, the `listen` form). The validator checks framework values with these same
schemas, and `headwater config schema` assembles them with every installed connector's
config schema into one document editors can use.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import msgspec

from headwater_spec import EVENT_TYPES, ConnectorSpec

from ..config import (
    DURATION_PATTERN,
    FRAMEWORK_KEYS,
    RETENTION_PATTERN,
    ConnectorInstance,
    LogConfig,
    ServerConfig,
    WorkspaceConfig,
)
from ..config._model import Kind
from ._regions import instance_regions, workspace_regions

SCHEMA_ID = "https://headwater.dev/schemas/headwater.schema.json"
SECTIONS: dict[str, type[msgspec.Struct]] = {
    "workspace": WorkspaceConfig,
    "server": ServerConfig,
    "log": LogConfig,
}
INSTANCE_SECTIONS: dict[str, Kind] = {"sources": "source", "destinations": "destination"}
DESTINATION_ONLY = (
    "events",
    "sources",
    "start",
    "max_attempts",
    "max_age",
    "concurrency",
    "batch_size",
    "linger_ms",
)
"""Framework keys about delivery, which mean nothing on a source (an error there)."""

FRAMEWORK_SECRETS = {("server", "admin_token")}

_TIMESTAMP = (
    r"^(now|beginning|[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$"
)

_LISTEN = r"^.+:[0-9]{1,5}$"
_URL = r"^[a-z][a-z0-9+.-]*://"

PATTERN_HINTS = {
    DURATION_PATTERN: "must be a duration such as `90s`, `30m`, `24h` or `1h30m`",
    _TIMESTAMP: "must be `now`, `beginning` or a date or timestamp such as "
    "`2024-01-31` or `2024-01-31T08:00:00Z`",
    RETENTION_PATTERN: "must be an age such as `400d` or `12w`, or a size such as `50GB` or "
    "`500MiB`",
    _LISTEN: "must be host:port, e.g. `127.0.0.1:8080`",
    _URL: "must be a URL with a scheme, e.g. `https://proxy.example.com`",
}
"""Sentences for the patterns of framework keys, instead of the regular expression."""

ENV_REFERENCE = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "An environment variable reference, resolved when the config is loaded.",
}

_SECTION_DOCS: dict[str, dict[str, dict[str, Any]]] = {
    "workspace": {
        "name": {"description": "A name for this deployment.", "minLength": 1},
        "region": {"description": "Where this deployment and its log live."},
        "residency": {
            "description": "May data leave the region? strict: an error; warn: a warning; "
            "off: allowed."
        },
        "data_dir": {
            "description": "The log's folder; relative to the config file.",
            "minLength": 1,
        },
        "retention": {
            "description": "How much history the log keeps: an age (`400d`) or a size "
            "(`50GB`); unset keeps every event. Never trims past a destination's cursor or "
            "an unfinished replay.",
            "pattern": RETENTION_PATTERN,
        },
    },
    "server": {
        "listen": {
            "description": "host:port of the HTTP server (ingestion and admin).",
            "pattern": _LISTEN,
        },
        "admin_token": {
            "description": "Bearer token of the admin API; use ${ENV}.",
            "secret": True,
            "minLength": 1,
        },
    },
    "log": {
        "backend": {"description": "`lmdb` (one machine) or `jetstream` (NATS JetStream)."},
        "max_size": {"description": "Largest size of the LMDB map, in bytes.", "minimum": 1},
        "servers": {"description": "NATS server URLs (jetstream)."},
        "stream": {"description": "JetStream stream name.", "minLength": 1},
        "replicas": {"description": "JetStream replicas.", "minimum": 1, "maximum": 5},
        "partitions": {
            "description": "JetStream partition subjects per stream (default: the stream's; "
            "16 for a new one). Every daemon must use the same count.",
            "minimum": 1,
            "maximum": 4096,
        },
        "credentials": {"description": "NATS credentials file (jetstream)."},
        "tls": {"description": "Connect to NATS over TLS."},
        "tls_ca": {"description": "PEM file of the CA that signed the NATS servers' certificates."},
        "tls_cert": {"description": "PEM client certificate for NATS (with tls_key)."},
        "tls_key": {"description": "PEM private key of tls_cert."},
        "duplicate_window": {
            "description": "Seconds a re-sent messageId is dropped as a duplicate (jetstream).",
            "exclusiveMinimum": 0,
        },
        "ack_timeout": {
            "description": "Seconds an append waits for JetStream, through a failover.",
            "exclusiveMinimum": 0,
        },
    },
}

_INSTANCE_RULES: dict[str, dict[str, Any]] = {
    "connector": {"minLength": 1},
    "events": {"items": {"enum": list(EVENT_TYPES)}, "uniqueItems": True},
    "sources": {"uniqueItems": True},
    "start": {"pattern": _TIMESTAMP},
    "endpoint": {"pattern": _URL},
    "max_attempts": {"minimum": 1},
    "max_age": {"pattern": DURATION_PATTERN},
    "concurrency": {"minimum": 1},
    "rate_limit": {"exclusiveMinimum": 0},
    "batch_size": {"minimum": 1},
    "linger_ms": {"minimum": 0},
}


def _struct_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    generated = msgspec.json.schema(struct)
    body: dict[str, Any] = generated["$defs"][struct.__name__]
    body.pop("title", None)
    body.pop("description", None)
    body.pop("required", None)
    body["properties"] = {k: _no_null(v) for k, v in body["properties"].items()}
    return body


def _no_null(schema: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: ``anyOf [X, null]`` becomes X and a null default goes."""
    out = dict(schema)
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            out.pop("anyOf")
            out = {**kept[0], **out}
    if "default" in out and out["default"] is None:
        del out["default"]
    return out


def section_schema(name: str, specs: Iterable[ConnectorSpec]) -> dict[str, Any]:
    """The schema of `[workspace]`, `[server]` or `[log]`."""
    body = _struct_schema(SECTIONS[name])
    for key, extra in _SECTION_DOCS[name].items():
        if key in body["properties"]:
            body["properties"][key].update(extra)
    if name == "workspace":
        body["properties"]["region"]["enum"] = workspace_regions(specs)
    if name == "log":
        body["if"] = {"properties": {"backend": {"const": "jetstream"}}, "required": ["backend"]}
        body["then"] = {"required": ["servers"], "properties": {"servers": {"minItems": 1}}}
    return body


def framework_properties(kind: str, spec: ConnectorSpec | None) -> dict[str, Any]:
    """Schemas of the framework keys of a `kind` instance, tightened for ``spec``'s connector.

    On a source, the destination-only keys are ``false`` (never allowed).
    """
    base = _struct_schema(ConnectorInstance)["properties"]
    props: dict[str, Any] = {}
    for key, meaning in FRAMEWORK_KEYS.items():
        if kind == "source" and key in DESTINATION_ONLY:
            props[key] = False
            continue
        schema = {**base[key], "description": meaning[:1].upper() + meaning[1:] + "."}
        schema.update(copy.deepcopy(_INSTANCE_RULES.get(key, {})))
        if key == "events" and "items" in base[key]:
            schema["items"] = {**base[key]["items"], **schema["items"]}
        props[key] = schema
    if spec is not None:
        props["region"]["enum"] = instance_regions(spec)
        if kind == "destination":
            props["batch_size"]["maximum"] = spec.delivery.max_batch
    return props


def connector_definition(spec: ConnectorSpec) -> dict[str, Any]:
    """A connector's config schema, made to accept the framework keys beside its own and
    with its internal ``$ref``s re-rooted under ``#/$defs/connector-<name>``."""
    schema = _secrets_as_env(copy.deepcopy(spec.config))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    props = schema.setdefault("properties", {})
    for key in FRAMEWORK_KEYS:
        props.setdefault(key, True)
    rerooted: dict[str, Any] = _reroot(schema, f"#/$defs/connector-{spec.name}")
    return rerooted


_NOT_SCHEMAS = ("default", "examples", "const", "enum")
"""Keywords whose values are data, not subschemas: a secret mark is never looked for there."""


def _secrets_as_env(node: Any) -> Any:
    """Every schema marked secret, wherever it is nested, made to accept `${ENV}`."""
    if isinstance(node, list):
        return [_secrets_as_env(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("secret") is True:
        return _env_reference_allowed(node)
    return {k: v if k in _NOT_SCHEMAS else _secrets_as_env(v) for k, v in node.items()}


def _env_reference_allowed(prop: dict[str, Any]) -> dict[str, Any]:
    """A secret may be given as `${ENV}` (the recommended way) whatever its own rules say:
    its value is only known where the daemon runs. Its default and examples are dropped:
    the schema is printed and committed, and a secret is never shown."""
    outer: dict[str, Any] = {k: prop[k] for k in ("description", "secret", "title") if k in prop}
    inner = {k: v for k, v in prop.items() if k not in outer and k not in ("default", "examples")}
    return {**outer, "anyOf": [inner, ENV_REFERENCE]}


def _reroot(value: Any, base: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                base + v[1:]
                if k == "$ref" and isinstance(v, str) and v.startswith("#")
                else _reroot(v, base)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_reroot(v, base) for v in value]
    return value


def instance_schema(kind: str, specs: list[ConnectorSpec]) -> dict[str, Any]:
    direction = "in" if kind == "source" else "out"
    names = sorted(s.name for s in specs if s.direction == direction)
    props = framework_properties(kind, None)
    connector = dict(props["connector"])
    if names:
        connector["enum"] = names
    props["connector"] = connector
    branches = []
    for spec in sorted(specs, key=lambda s: s.name):
        if spec.direction != direction:
            continue
        tightened = framework_properties(kind, spec)
        branches.append(
            {
                "if": {
                    "properties": {"connector": {"const": spec.name}},
                    "required": ["connector"],
                },
                "then": {
                    "properties": {
                        k: tightened[k]
                        for k in ("region", "batch_size")
                        if isinstance(tightened[k], dict)
                    },
                    "allOf": [{"$ref": f"#/$defs/connector-{spec.name}"}],
                },
            }
        )
    schema: dict[str, Any] = {"type": "object", "required": ["connector"], "properties": props}
    if branches:
        schema["allOf"] = branches
    return schema


def config_file_schema(specs: Iterable[ConnectorSpec]) -> dict[str, Any]:
    """The JSON Schema of a whole `headwater.toml` for the given connectors."""
    spec_list = sorted(specs, key=lambda s: s.name)
    defs: dict[str, Any] = {
        "source": instance_schema("source", spec_list),
        "destination": instance_schema("destination", spec_list),
    }
    for spec in spec_list:
        defs[f"connector-{spec.name}"] = connector_definition(spec)
    properties: dict[str, Any] = {name: section_schema(name, spec_list) for name in SECTIONS}
    for section, kind in INSTANCE_SECTIONS.items():
        properties[section] = {
            "type": "object",
            "description": f"{kind.capitalize()} instances by id.",
            "additionalProperties": {"$ref": f"#/$defs/{kind}"},
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "headwater.toml",
        "description": "Headwater's config file, generated from the installed connectors "
        "(`headwater config schema`).",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "$defs": defs,
    }
