"""Secrets: collect their values so no output ever shows them, and flag literal ones.

Which values are secret comes from the connector specs (``"secret": true`` on a config
property, or inside an object: the values of the webhook's `headers`; see
``headwater_spec.secret_paths``) plus `server.admin_token`. Every string there is a secret,
both as written and as resolved from the environment, and so is the value of each
environment variable referenced there: a message that quotes only part of a resolved
value (``Bearer ${TOKEN}`` -> the token) is scrubbed too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater_spec import REDACT_MIN_LENGTH, strings_in

from ..config import MissingEnvError, env_refs, expand

MASK = "***"
MIN_LENGTH = REDACT_MIN_LENGTH
"""Shorter values are not scrubbed from free text: they protect nothing, and masking every
`dev` or `eu` in every message would make the output unreadable. Validation's own messages
never quote a secret field's value at any length."""


class Redactor:
    """Replaces every known secret value in a text by ``***``."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add_field(self, raw: Any, environ: Mapping[str, str]) -> None:
        """Register the secrets of one secret field, as written and as resolved."""
        for text in strings_in(raw):
            names = env_refs(text)
            missing: list[MissingEnvError] = []
            resolved = expand(text, "", environ, missing)
            if not names:
                self._add(text)
            elif not missing:
                self._add(resolved)
            for name in names:
                if name in environ:
                    self._add(environ[name])

    def _add(self, value: str) -> None:
        if len(value) >= MIN_LENGTH:
            self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


def is_literal(raw: Any) -> bool:
    """True when a secret field holds a string with no ``${ENV}`` reference.

    A reference with a default (``${KEY:-dev}``) counts as a reference: the operator chose
    a fallback for development on purpose, as the embedded default config does.
    """
    return any(text and not env_refs(text) for text in strings_in(raw))
