"""Read `headwater.toml` (or the embedded default) into a Config."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import msgspec.inspect

from ._env import MissingEnvError, expand
from ._model import (
    FRAMEWORK_KEYS,
    Config,
    ConnectorInstance,
    Kind,
    LogConfig,
    ServerConfig,
    WorkspaceConfig,
)

DEFAULT_FILE = "headwater.toml"
_SECTIONS = {"workspace", "server", "log", "sources", "destinations"}
_TABLES: dict[str, type[msgspec.Struct]] = {
    "workspace": WorkspaceConfig,
    "server": ServerConfig,
    "log": LogConfig,
}
_INSTANCE_FIELDS = set(ConnectorInstance.__struct_fields__) - {"id", "kind", "options"}
assert set(FRAMEWORK_KEYS) == _INSTANCE_FIELDS, "FRAMEWORK_KEYS and ConnectorInstance drifted"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key and the fix."""

    def __init__(self, message: str, *, file: str | None = None, path: str = "") -> None:
        self.file = file
        self.path = path
        prefix = file or "embedded default config"
        where = f"{prefix}: `{path}`" if path else prefix
        super().__init__(f"{where}: {message}")


def default_config_text() -> str:
    return resources.files("headwater.config").joinpath("default.toml").read_text("utf-8")


def resolve_config_path(path: str | Path | None) -> Path | None:
    """The file to read: the given one, else ./headwater.toml when it exists, else None."""
    if path is not None:
        return Path(path)
    candidate = Path(DEFAULT_FILE)
    return candidate if candidate.exists() else None


def read_toml(path: Path | None) -> tuple[dict[str, Any], str | None]:
    """Parse the file (or the embedded default); return the data and the file name."""
    if path is None:
        return tomllib.loads(default_config_text()), None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found; pass an existing file with --config or run without it to use "
            "the embedded default",
            file=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    missing: list[MissingEnvError] | None = None,
) -> Config:
    """Load and structurally check a config. Connector options are checked separately
    against the installed connectors' specs (``check_connector_options``)."""
    resolved = resolve_config_path(path)
    data, file = read_toml(resolved)
    return config_from_dict(data, file=file, environ=environ, missing=missing)


def config_from_dict(
    data: dict[str, Any],
    *,
    file: str | None = None,
    environ: Mapping[str, str] | None = None,
    missing: list[MissingEnvError] | None = None,
) -> Config:
    unknown = set(data) - _SECTIONS
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"unknown section; the sections are {', '.join(sorted(_SECTIONS))}",
            file=file,
            path=name,
        )
    try:
        expanded: dict[str, Any] = {
            key: expand(data[key], key, environ, missing)
            for key in ("workspace", "server", "log")
            if key in data
        }
    except MissingEnvError as exc:
        raise _env_error(exc, file) from None
    for key, struct in _TABLES.items():
        _check_keys(expanded.get(key), key, struct, file)
    try:
        config = msgspec.convert(expanded, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_field_message(str(exc)), file=file) from None
    config.path = file
    for kind, section in (("source", "sources"), ("destination", "destinations")):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError("must be a table of instances", file=file, path=section)
        instances: dict[str, ConnectorInstance] = {}
        for instance_id, body in table.items():
            where = f"{section}.{instance_id}"
            if not isinstance(body, dict):
                raise ConfigError("must be a table", file=file, path=where)
            try:
                body = expand(body, where, environ, missing)
            except MissingEnvError as exc:
                raise _env_error(exc, file) from None
            instances[instance_id] = instance_from_dict(instance_id, kind, body, file=file)  # type: ignore[arg-type]
        if kind == "source":
            config.sources = instances
        else:
            config.destinations = instances
    return config


def _check_keys(table: Any, section: str, struct: type[msgspec.Struct], file: str | None) -> None:
    """Name an unknown key of a framework table, with the likely intended one."""
    if not isinstance(table, dict):
        if table is not None:
            raise ConfigError("must be a table", file=file, path=section)
        return
    known = struct.__struct_fields__
    choices = _literal_choices(struct)
    for key, value in table.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise ConfigError(
                f"unknown key; {hint}the keys of [{section}] are {', '.join(known)}",
                file=file,
                path=f"{section}.{key}",
            )
        allowed = choices.get(key)
        if allowed is not None and value not in allowed:
            raise ConfigError(
                f"{value!r} is not one of {', '.join(repr(a) for a in allowed)}",
                file=file,
                path=f"{section}.{key}",
            )


def _literal_choices(struct: type[msgspec.Struct]) -> dict[str, tuple[Any, ...]]:
    """Fields typed as a Literal, with their allowed values."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        field.name: tuple(field.type.values)
        for field in info.fields
        if isinstance(field.type, msgspec.inspect.LiteralType)
    }


def _env_error(exc: MissingEnvError, file: str | None) -> ConfigError:
    return ConfigError(
        f"references ${{{exc.variable}}}, which is not set; export it or give a default "
        f"with ${{{exc.variable}:-value}}",
        file=file,
        path=exc.path,
    )


def instance_from_dict(
    instance_id: str, kind: Kind, body: dict[str, Any], *, file: str | None = None
) -> ConnectorInstance:
    section = "sources" if kind == "source" else "destinations"
    where = f"{section}.{instance_id}"
    if "connector" not in body:
        raise ConfigError(
            "missing `connector`; name the connector to use (`headwater connectors list`)",
            file=file,
            path=where,
        )
    framework = {k: v for k, v in body.items() if k in FRAMEWORK_KEYS}
    options = {k: v for k, v in body.items() if k not in FRAMEWORK_KEYS}
    try:
        return msgspec.convert(
            {**framework, "id": instance_id, "kind": kind, "options": options},
            ConnectorInstance,
        )
    except msgspec.ValidationError as exc:
        raise ConfigError(_field_message(str(exc), prefix=where), file=file) from None


def connector_option_errors(
    instance: ConnectorInstance, config_schema: dict[str, Any]
) -> list[tuple[str, str]]:
    """(json pointer, message) for each way the instance's own keys break the schema.

    An unknown key and a missing required key point at that key (with the likely intended
    key for a typo), so the error can name it; unknown keys come first, since a typo
    usually causes both."""
    validator = jsonschema.Draft202012Validator(config_schema)
    problems: list[tuple[int, str, str]] = []
    for err in validator.iter_errors(instance.options):
        base = [str(p) for p in err.absolute_path]
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list(err.schema.get("properties", {}))
            for key in err.instance:
                if key in allowed or _matches_pattern(key, err.schema):
                    continue
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean `{close[0]}`? " if close else ""
                known = ", ".join(allowed) or "none"
                problems.append(
                    (0, _pointer([*base, key]), f"unknown key; {hint}the keys are {known}")
                )
        elif err.validator == "required" and isinstance(err.instance, dict):
            for key in err.validator_value:
                if key not in err.instance:
                    problems.append((1, _pointer([*base, key]), "required key is missing"))
        else:
            problems.append((2, _pointer(base), err.message))
    problems.sort(key=lambda p: (p[0], p[1]))
    return [(pointer, message) for _, pointer, message in problems]


def _matches_pattern(key: str, schema: dict[str, Any]) -> bool:
    return any(re.search(pattern, key) for pattern in schema.get("patternProperties", {}))


def _pointer(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def check_connector_options(config: Config, specs: Mapping[str, dict[str, Any]]) -> None:
    """Raise ConfigError for the first instance whose keys break its connector's schema.

    ``specs`` maps connector name to its config JSON Schema; unknown connectors are errors.
    """
    for inst in config.instances():
        section = "sources" if inst.kind == "source" else "destinations"
        where = f"{section}.{inst.id}"
        if inst.connector not in specs:
            known = ", ".join(sorted(specs)) or "none"
            raise ConfigError(
                f"connector {inst.connector!r} is not installed (installed: {known})",
                file=config.path,
                path=f"{where}.connector",
            )
        for pointer, message in connector_option_errors(inst, specs[inst.connector]):
            key = pointer.strip("/").replace("/", ".")
            raise ConfigError(
                _redact(message, inst, specs[inst.connector]),
                file=config.path,
                path=f"{where}.{key}" if key else where,
            )


def _redact(message: str, inst: ConnectorInstance, schema: dict[str, Any]) -> str:
    """jsonschema's messages quote the value; mask every secret of the instance in them."""
    from headwater_spec import SecretRedactor, secret_paths, secret_values

    return SecretRedactor(secret_values(secret_paths(schema), inst.options))(message)


def rule_key(message: str) -> str | None:
    """The key a Struct's own rule (its ``__post_init__``) is about: those messages start
    with ``key = value``, since msgspec places them at the Struct, not the key."""
    named = _RULE_KEY.match(message)
    return named.group(1) if named else None


_RULE_KEY = re.compile(r"([a-z_]+) = ")


def _field_message(message: str, prefix: str = "") -> str:
    text, sep, path = message.rpartition(" - at `")
    if not sep:
        return message
    field = path.rstrip("`").removeprefix("$").lstrip(".")
    key = rule_key(text)
    if key and "." not in field and field:
        field = f"{field}.{key}"
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    return f"`{field}`: {text}"
