"""Connector specs: the JSON document each connector ships, and its validation."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema
import msgspec
from jsonschema.exceptions import SchemaError

from ._events import EVENT_TYPES, EventType
from ._secrets import (
    ANY,
    SecretPath,
    SecretRedactor,
    redact_config,
    secret_paths,
    secret_values,
)

Direction = Literal["in", "out"]
META_SCHEMA_FILE = "connector-spec.schema.json"
SPEC_VERSION = 1


class SpecError(ValueError):
    """A spec that breaks the meta-schema; the message names the field and the fix."""

    def __init__(self, message: str, *, owner: str = "", pointer: str = "") -> None:
        self.owner = owner
        self.pointer = pointer
        where = " ".join(p for p in (owner, f"at {pointer}" if pointer else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


class RegionSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    endpoint: str | None = None
    description: str | None = None


class DeliveryHints(msgspec.Struct, frozen=True, omit_defaults=True):
    max_batch: int = 100
    max_batch_bytes: int = 512 * 1024
    rate_limit: float | None = None
    dedupes_on_message_id: bool = False


class Examples(msgspec.Struct, frozen=True, omit_defaults=True):
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []


class ConnectorSpec(msgspec.Struct, frozen=True, omit_defaults=True, rename={"schema_": "$schema"}):
    """A connector's declaration: what it is, where it can serve, how it is configured."""

    name: str
    version: str
    direction: Direction
    regions: dict[str, RegionSpec]
    config: dict[str, Any]
    schema_: str | None = None
    spec_version: int = SPEC_VERSION
    title: str | None = None
    description: str | None = None
    default_region: str | None = None
    event_types: list[EventType] = msgspec.field(default_factory=lambda: list(EVENT_TYPES))
    delivery: DeliveryHints = DeliveryHints()
    examples: Examples = Examples()

    @classmethod
    def from_dict(cls, data: Any, *, owner: str = "") -> ConnectorSpec:
        """Validate ``data`` against the meta-schema and load it; raise SpecError."""
        validate_spec(data, owner=owner)
        return msgspec.convert(data, cls)

    @classmethod
    def from_json(cls, text: bytes | str, *, owner: str = "") -> ConnectorSpec:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"spec.json is not valid JSON: {exc}", owner=owner) from None
        return cls.from_dict(data, owner=owner)

    @classmethod
    def from_package(cls, package: str | None, filename: str = "spec.json") -> ConnectorSpec:
        """Load ``spec.json`` shipped inside ``package`` (pass ``__package__``)."""
        if not package:
            raise SpecError("from_package needs the package name (pass __package__)")
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
        return cls.from_json(text, owner=f"{package}/{filename}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def secret_fields(self) -> frozenset[str]:
        """Top-level config keys whose whole value is marked ``"secret": true``."""
        return secret_fields(self.config)

    def secret_paths(self) -> frozenset[SecretPath]:
        """Every place in the config marked secret, nested ones included (``_secrets.py``)."""
        return secret_paths(self.config)

    def redact(self, config: Any) -> Any:
        """``config`` with every secret value shown as ``***``, for reprs and listings."""
        return redact_config(self.secret_paths(), config)

    def secret_values(self, config: Any) -> list[str]:
        """The secret strings set in ``config``, to scrub from free text."""
        return secret_values(self.secret_paths(), config)

    def redactor(self, config: Any) -> SecretRedactor:
        """Masks the secrets of ``config`` in text: exception texts, service answers."""
        return SecretRedactor(self.secret_values(config))

    def effective_default_region(self) -> str:
        if self.default_region:
            return self.default_region
        if len(self.regions) == 1:
            return next(iter(self.regions))
        return "global" if "global" in self.regions else next(iter(self.regions))

    def endpoint_for(self, region: str) -> str | None:
        entry = self.regions.get(region)
        return entry.endpoint if entry else None


def secret_fields(schema: dict[str, Any]) -> frozenset[str]:
    """Top-level keys of a config schema whose whole value is secret (see ``secret_paths``
    for the nested marks)."""
    return frozenset(p[0] for p in secret_paths(schema) if len(p) == 1 and p[0] != ANY)


@cache
def meta_schema() -> dict[str, Any]:
    """The connector spec meta-schema shipped with this package."""
    text = resources.files("headwater_spec").joinpath(META_SCHEMA_FILE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def validate_spec(data: Any, *, owner: str = "") -> None:
    """Raise SpecError for the first problem of ``data`` as a connector spec."""
    validator = jsonschema.Draft202012Validator(meta_schema())
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (len(e.path), [str(p) for p in e.path])
    )
    if errors:
        err = errors[0]
        raise SpecError(_describe(err), owner=owner, pointer=_pointer(err.absolute_path))
    assert isinstance(data, dict)
    try:
        jsonschema.Draft202012Validator.check_schema(data["config"])
    except SchemaError as exc:
        raise SpecError(
            f"`config` is not a valid JSON Schema: {exc.message}",
            owner=owner,
            pointer="/config" + (_pointer(exc.path) if exc.path else ""),
        ) from None
    default = data.get("default_region")
    if default is not None and default not in data["regions"]:
        raise SpecError(
            f"`default_region` {default!r} is not one of the declared regions "
            f"({', '.join(data['regions'])})",
            owner=owner,
            pointer="/default_region",
        )
    for example in data.get("examples", {}).get("valid", []):
        problem = next(jsonschema.Draft202012Validator(data["config"]).iter_errors(example), None)
        if problem is not None:
            raise SpecError(
                f"example config {example!r} is listed as valid but fails: {problem.message}",
                owner=owner,
                pointer="/examples/valid",
            )


def _describe(err: jsonschema.ValidationError) -> str:
    field = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "required":
        return f"{err.message}; add it to the spec"
    if err.validator == "additionalProperties":
        return f"{err.message} in `{field}`; remove it or check its spelling"
    if "propertyNames" in err.schema_path and list(err.absolute_path)[:1] == ["regions"]:
        allowed = ", ".join(meta_schema()["properties"]["regions"]["propertyNames"]["enum"])
        return f"unknown region {err.instance!r} in `regions`; known regions: {allowed}"
    return f"`{field}`: {err.message}"
