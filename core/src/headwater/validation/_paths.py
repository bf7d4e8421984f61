"""Config paths: a key's place in the file as a tuple, shown as `destinations.x.events[0]`."""

from __future__ import annotations

import json
import re

Path = tuple[str | int, ...]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: Path) -> str:
    """Dotted keys as TOML writes them (quoted when not bare), list indexes in brackets."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE.match(part) else json.dumps(part)
        out = f"{out}.{key}" if out else key
    return out


def json_pointer(path: Path) -> str:
    """RFC 6901 pointer of ``path`` (``/`` for the whole document)."""
    if not path:
        return "/"
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)
