"""Config validation: `headwater validate` as a library.

``validate_file`` / ``validate_text`` check a `headwater.toml` against the installed
connectors (pass the registry, so tests and embedders choose them) and return a Report of
every problem with a stable code (docs/validate.md). ``config_file_schema`` builds the JSON
Schema of the whole file for editors.
"""

from ._codes import CODES, Code, Severity
from ._problems import ConnectorRow, Problem, Report
from ._schema import config_file_schema
from ._text import render_text
from ._validate import DEFAULT_CHECK_TIMEOUT, validate_file, validate_text

__all__ = [
    "CODES",
    "DEFAULT_CHECK_TIMEOUT",
    "Code",
    "ConnectorRow",
    "Problem",
    "Report",
    "Severity",
    "config_file_schema",
    "render_text",
    "validate_file",
    "validate_text",
]
