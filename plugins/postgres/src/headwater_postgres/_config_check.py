"""Refuse a config that breaks the connector's own schema, naming the key and never a secret.

The daemon validates instance configs before building connectors; this second check is for
code that builds a connector directly (tests, scripts) and must still get a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from headwater_spec import ConnectorSpec

from ._connection import PostgresError


def check_config(spec: ConnectorSpec, config: Mapping[str, Any], *, who: str) -> None:
    validator = jsonschema.Draft202012Validator(spec.config)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is None:
        return
    key = ".".join(str(p) for p in error.absolute_path)
    message = error.message
    for secret in spec.secret_fields():
        value = config.get(secret)
        if isinstance(value, str) and value:
            message = message.replace(value, "***")
    where = f"`{key}`: " if key else ""
    raise PostgresError(f"{who}: invalid config: {where}{message}")
