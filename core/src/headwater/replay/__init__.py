"""Replay: send a range of the log's history to a destination, beside live traffic.

A job is persisted in the log (``replays`` table, own cursor), runs through the router's
delivery machinery for its destination (see _run.py), is paced, resumable after a restart
and reports its progress. ``ReplayService`` runs jobs in the daemon; the functions of
``_jobs`` read and change them from the log when no daemon runs.
"""

from ._admin import add_admin_routes
from ._jobs import (
    JobStateError,
    JobStatus,
    Progress,
    ReplayRequest,
    UnknownJobError,
    build_job,
    change_state,
    job_status,
    list_jobs,
    load_job,
    read_status,
    save_job,
)
from ._range import RangeError, parse_rate, parse_time, resolve_range
from ._records import REPLAYS, ReplayFilter, ReplayJob
from ._run import ReplayRun
from ._service import ReplayService

__all__ = [
    "REPLAYS",
    "JobStateError",
    "JobStatus",
    "Progress",
    "RangeError",
    "ReplayFilter",
    "ReplayJob",
    "ReplayRequest",
    "ReplayRun",
    "ReplayService",
    "UnknownJobError",
    "add_admin_routes",
    "build_job",
    "change_state",
    "job_status",
    "list_jobs",
    "load_job",
    "parse_rate",
    "parse_time",
    "read_status",
    "resolve_range",
    "save_job",
]
