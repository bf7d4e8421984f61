"""The suite's version: the headwater-spec release it ships in.

The suite and the contract are released together, so pinning ``headwater-spec==X`` in a
connector's test dependencies pins the checks it must pass.
"""

from __future__ import annotations

from .. import __version__
from .._spec import SPEC_VERSION

SUITE_VERSION: str = __version__
"""Equal to ``headwater_spec.__version__``."""

CHECKS_SPEC_VERSION: int = SPEC_VERSION
"""The `spec_version` of spec.json files this suite checks."""
