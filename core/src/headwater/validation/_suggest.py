"""Did-you-mean hints for misspelt keys, connector names, regions and enum values."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean `x`?)"`` or an empty string."""
    match = closest(word, candidates)
    return f" (did you mean `{match}`?)" if match else ""
