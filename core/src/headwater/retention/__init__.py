"""Retention: trim the oldest events of the log by age or size, never past what a
destination or an unfinished replay still needs (see _plan.py)."""

from ..config import RetentionPolicy, parse_retention
from ._plan import Hold, TrimPlan, holds, plan_trim, wanted_upto
from ._service import RetentionService, TrimResult, policy_of

__all__ = [
    "Hold",
    "RetentionPolicy",
    "RetentionService",
    "TrimPlan",
    "TrimResult",
    "holds",
    "parse_retention",
    "plan_trim",
    "policy_of",
    "wanted_upto",
]
