"""The stable problem codes of `headwater validate`.

Codes never change meaning once released: CI pipelines filter on them. Each is documented
in docs/validate.md (a test keeps the two in sync). The severity here is the default; the
residency codes take theirs from `[workspace] residency`, and HW041 becomes a warning with
``--allow-missing-env``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class Code(msgspec.Struct, frozen=True):
    code: str
    title: str
    severity: Severity = "error"
    usage: bool = False
    """A usage problem (bad arguments, unreadable file) makes the exit code 2, not 1."""


_ALL = (
    Code("HW001", "the config file cannot be read", usage=True),
    Code("HW002", "the file is not valid TOML"),
    Code("HW003", "`--region` names an unknown region", usage=True),
    Code("HW010", "unknown top-level section"),
    Code("HW011", "unknown key in [workspace], [server] or [log]"),
    Code("HW012", "invalid value in [workspace], [server] or [log]"),
    Code("HW013", "a section or connector instance that must be a table is not"),
    Code("HW020", "connector instance without `connector`"),
    Code("HW021", "the named connector is not installed"),
    Code("HW022", "connector used in the wrong direction"),
    Code("HW023", "unknown key in a connector instance"),
    Code("HW024", "invalid value of a framework key in a connector instance"),
    Code("HW025", "destination-only key in a source"),
    Code("HW030", "connector option breaks the connector's JSON Schema"),
    Code("HW031", "required connector option missing"),
    Code("HW040", "secret given as a literal value", severity="warning"),
    Code("HW041", "referenced environment variable is not set"),
    Code("HW050", "unknown workspace region"),
    Code("HW051", "connector cannot serve the configured region"),
    Code("HW052", "connector's effective region is outside the workspace region"),
    Code("HW053", "connector serves no region matching the workspace"),
    Code("HW054", "endpoint override points to another region"),
    Code("HW055", "connector's region is unknown", severity="warning"),
    Code("HW060", "no enabled source"),
    Code("HW061", "destination `sources` filter names an unknown source"),
    Code("HW062", "destination can never receive an event", severity="warning"),
    Code("HW063", "no enabled destination", severity="warning"),
    Code("HW070", "connectivity check failed"),
    Code("HW071", "connectivity check timed out"),
)

CODES: dict[str, Code] = {c.code: c for c in _ALL}
RESIDENCY_CODES = frozenset({"HW052", "HW053", "HW054"})
