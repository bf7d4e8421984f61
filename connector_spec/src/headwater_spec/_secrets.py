"""Which config values are secret, found from the config schema, and the config masked.

A connector's config schema marks a secret with ``"secret": true`` on the schema of the
value, wherever it is: a top-level property (``api_key``), a property of a nested object
(``auth.password``), the values of an object (on ``additionalProperties`` or a
``patternProperties`` schema: the webhook's ``headers`` keep their names visible and hide
their values) or the items of an array. The whole value there is secret, every string in
it at any depth. Marks are found through ``properties``, ``additionalProperties``,
``patternProperties``, ``items``, ``prefixItems``, ``allOf``/``anyOf``/``oneOf``,
``then``/``else`` and local ``$ref``s (``#/$defs/...``).

A secret path is a tuple of keys where ``"*"`` stands for any key of an object or any item
of an array: ``("api_key",)``, ``("headers", "*")``. Everything that shows, logs or checks
config values goes through these functions, so a mark means the same everywhere: reprs,
`headwater validate`, the daemon's errors, the conformance suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

MASK = "***"
REDACT_MIN_LENGTH = 4
"""The shortest secret value ``SecretRedactor`` masks in free text (as `headwater validate`
does)."""
"""What a redacted secret reads as, in reprs, listings and scrubbed text."""
ANY = "*"
SecretPath = tuple[str, ...]
Location = tuple[str | int, ...]
"""A concrete place in a config: keys and list indexes."""

_SAME_PLACE = ("allOf", "anyOf", "oneOf", "then", "else")


def secret_paths(schema: dict[str, Any]) -> frozenset[SecretPath]:
    """Every place ``schema`` marks secret, as paths with ``"*"`` for any key or item."""
    return frozenset(marked_schemas(schema))


def marked_schemas(schema: dict[str, Any]) -> dict[SecretPath, dict[str, Any]]:
    """The schemas marked ``"secret": true``, by their secret path."""
    found: dict[SecretPath, dict[str, Any]] = {}
    _walk(schema, schema, (), found, ())
    return found


def _walk(
    node: Any,
    root: dict[str, Any],
    at: SecretPath,
    found: dict[SecretPath, dict[str, Any]],
    refs: tuple[str, ...],
) -> None:
    if not isinstance(node, dict):
        return
    if node.get("secret") is True:
        found.setdefault(at, node)
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in refs:
        _walk(_resolve(root, ref), root, at, found, (*refs, ref))
    props = node.get("properties")
    if isinstance(props, dict):
        for key, sub in props.items():
            _walk(sub, root, (*at, key), found, refs)
    patterns = node.get("patternProperties")
    subs = list(patterns.values()) if isinstance(patterns, dict) else []
    subs += [node.get("additionalProperties"), node.get("items")]
    prefix = node.get("prefixItems")
    subs += prefix if isinstance(prefix, list) else []
    for sub in subs:
        _walk(sub, root, (*at, ANY), found, refs)
    for keyword in _SAME_PLACE:
        value = node.get(keyword)
        for sub in value if isinstance(value, list) else [value]:
            _walk(sub, root, at, found, refs)


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _matches(pattern: SecretPath, location: Sequence[str | int]) -> bool:
    return all(p == ANY or p == str(k) for p, k in zip(pattern, location, strict=False))


def is_secret(paths: frozenset[SecretPath], location: Sequence[str | int]) -> bool:
    """True when the value at ``location`` is secret: at or inside a marked place."""
    return any(len(location) >= len(p) and _matches(p, location) for p in paths)


def holds_secret(paths: frozenset[SecretPath], location: Sequence[str | int]) -> bool:
    """True when the value at ``location`` is or contains a secret (``headers`` holds the
    secret header values): never show it whole."""
    return is_secret(paths, location) or any(
        len(location) < len(p) and _matches(p, location) for p in paths
    )


def secret_locations(paths: frozenset[SecretPath], config: Any) -> Iterator[tuple[Location, Any]]:
    """Each secret value set in ``config``, with where it is (sorted by path, then key)."""
    for path in sorted(paths):
        yield from _find(config, path, ())


def _find(value: Any, rest: SecretPath, at: Location) -> Iterator[tuple[Location, Any]]:
    if not rest:
        if value is not None:
            yield at, value
        return
    head, tail = rest[0], rest[1:]
    if isinstance(value, dict):
        keys = sorted(value, key=str) if head == ANY else [head] if head in value else []
        for key in keys:
            yield from _find(value[key], tail, (*at, key))
    elif isinstance(value, list) and head == ANY:
        for index, item in enumerate(value):
            yield from _find(item, tail, (*at, index))


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a value, at any depth (what a secret value consists of)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def secret_values(paths: frozenset[SecretPath], config: Any) -> list[str]:
    """Every secret string in ``config`` (for a ``SecretRedactor``), without duplicates."""
    found = (s for _, value in secret_locations(paths, config) for s in strings_in(value))
    return list(dict.fromkeys(s for s in found if s))


def redact_config(paths: frozenset[SecretPath], config: Any) -> Any:
    """A copy of ``config`` with each secret value replaced by ``***`` (keys stay)."""
    return _masked(config, paths, ())


def _masked(value: Any, paths: frozenset[SecretPath], at: Location) -> Any:
    if at and value is not None and is_secret(paths, at):
        return MASK
    if isinstance(value, dict):
        return {k: _masked(v, paths, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, paths, (*at, i)) for i, v in enumerate(value)]
    return value


class SecretRedactor:
    """Replaces secret values by ``***`` in text that came from the network.

    Services echo credentials in error bodies (``Invalid API key: <key>``), and those bodies
    become outcome reasons, dead letters and log lines; pass every reason built from a
    response through the redactor of the instance's secrets. Values shorter than
    ``REDACT_MIN_LENGTH`` are ignored (masking ``2`` or ``on`` in free text would garble
    every number and word in it, and hides nothing a guess would not find); longer secrets
    are replaced first, so one that contains another is masked whole. Config displays
    (``redact_config``) mask secret values of any length.
    """

    def __init__(self, secrets: Iterable[object]) -> None:
        values = {str(s) for s in secrets if s and len(str(s)) >= REDACT_MIN_LENGTH}
        self._secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"SecretRedactor({len(self._secrets)} secrets)"
