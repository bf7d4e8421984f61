"""The one syntax of durations in the config and on the command line.

A duration is a sequence of number-and-unit parts, added up: ``90s``, ``1.5s``, ``30m``,
``1h30m``, ``1d 12h``, ``400d``. Units: ``ms``, ``s``, ``m``, ``h``, ``d`` and ``w``
(7 days), lower case. Numbers are decimal (``0.5h``; no sign, no exponent). A bare number
alone is seconds (``90``); inside a sequence every part needs its unit (``1h30`` is
refused). Spaces around the whole, between parts and before a unit are ignored, as TOML
users and the Vector/humantime convention expect.

``DURATION_PATTERN`` is the same syntax as a regular expression for JSON Schemas (the
validator, ``headwater config schema``); ``parse_duration`` matches text with that very
pattern, so what validates is exactly what the daemon accepts.
"""

from __future__ import annotations

import re

UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_UNIT = "(?:ms|s|m|h|d|w)"
DURATION_BODY = rf"\s*(?:(?:{_NUMBER}\s*{_UNIT}\s*)+|{_NUMBER}\s*)"
"""The syntax without anchors, for patterns that combine it (``[workspace] retention``)."""
DURATION_PATTERN = rf"^{DURATION_BODY}$"
"""The syntax as a JSON Schema ``pattern`` (ECMA 262 and Python ``re`` alike)."""
DURATION_EXAMPLES = "500ms, 90s, 1.5s, 15m, 1h30m, 24h, 7d"

_WHOLE = re.compile(DURATION_BODY)
_PART = re.compile(rf"({_NUMBER})\s*({_UNIT})?")


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration (see the module docstring); an int or float is seconds already.

    Raise ValueError naming the accepted forms."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text)
    if not _WHOLE.fullmatch(value):
        raise ValueError(
            f"{text!r} is not a duration; write numbers with units ({DURATION_EXAMPLES}) "
            "or a number of seconds"
        )
    return sum(float(number) * UNIT_SECONDS[unit or "s"] for number, unit in _PART.findall(value))
