"""Replay jobs in the log: create, read, and change them without a running daemon.

The daemon's ReplayService uses the same functions; the CLI calls them directly when no
daemon runs (a job created then starts with the next `headwater serve`, and one paused
then stays paused), and reads from them for `list`/`status` in any case.
"""

from __future__ import annotations

import time

import msgspec

from ..config import Config
from ..log import AnyLog, iso_us, now_us
from ..router import RETRIES
from ._filter import check_filter
from ._range import parse_rate, resolve_range
from ._records import (
    REPLAYS,
    ReplayFilter,
    ReplayJob,
    cursor_name,
    decode_job,
    encode_job,
    job_key,
    job_prefix,
)
from ._run import parked_keys


class ReplayRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `headwater replay start` and ``POST /admin/replays`` ask for."""

    destination: str
    from_time: str | None = msgspec.field(default=None, name="from")
    to_time: str | None = msgspec.field(default=None, name="to")
    sources: list[str] | None = None
    event_types: list[str] | None = None
    events: list[str] | None = None
    rate: str | float | None = None
    """Events per second: a number, or text such as ``500/s`` or ``30000/m``."""


class UnknownJobError(KeyError):
    def __init__(self, job_id: str, known: list[str]) -> None:
        shown = ", ".join(known[-10:]) or "none"
        super().__init__(f"no replay job {job_id!r} (jobs: {shown}; see `headwater replay list`)")

    def __str__(self) -> str:
        return str(self.args[0])


class JobStateError(ValueError):
    """A change the job's state does not allow (resuming a finished job)."""


class Progress(msgspec.Struct, kw_only=True):
    done: int
    """Events of the range finished: delivered, filtered out, dead-lettered or skipped."""
    total: int
    """Events in the job's seq range."""
    percent: float
    rate: float
    """Events per second lately (0 when not running)."""
    eta_seconds: float | None


class JobStatus(msgspec.Struct, kw_only=True):
    id: str
    destination: str
    state: str
    waiting: str | None = None
    """Why a running job is not sending right now (its destination is paused or gone)."""
    first_seq: int
    last_seq: int
    cursor: int
    from_time: str | None = msgspec.field(default=None, name="from")
    to_time: str | None = msgspec.field(default=None, name="to")
    filter: ReplayFilter
    rate_limit: float | None
    progress: Progress
    delivered: int
    retried: int
    dead_lettered: int
    filtered: int
    pending_retries: int
    skipped: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None = None


# -- reading ---------------------------------------------------------------------------


def list_jobs(log: AnyLog) -> list[ReplayJob]:
    jobs = [decode_job(raw) for _key, raw in log.items(REPLAYS, job_prefix())]
    return sorted(jobs, key=_order)


def _order(job: ReplayJob) -> tuple[int, str]:
    return (int(job.id), job.id) if job.id.isdigit() else (1 << 62, job.id)


def load_job(log: AnyLog, job_id: str) -> ReplayJob:
    raw = log.get_value(REPLAYS, job_key(job_id))
    if raw is None:
        raise UnknownJobError(job_id, [j.id for j in list_jobs(log)])
    return decode_job(raw)


def job_cursor(log: AnyLog, job: ReplayJob) -> int:
    stored = log.get_cursor(cursor_name(job.id))
    return stored if stored is not None else job.first_seq


def progress(job: ReplayJob, cursor: int, pending: int, rate: float | None = None) -> Progress:
    total = job.total
    finished = min(total, cursor - job.first_seq) - pending
    done = total if job.state == "done" else max(0, finished)
    if rate is None:
        rate = 0.0
        if job.state == "running" and job.started_at:
            elapsed = time.time() - job.started_at / 1e6
            rate = done / elapsed if elapsed > 1 else 0.0
    remaining = total - done
    eta = remaining / rate if rate > 0 and remaining > 0 else (0.0 if not remaining else None)
    return Progress(
        done=done,
        total=total,
        percent=round(100.0 * done / total, 1) if total else 100.0,
        rate=round(rate, 1),
        eta_seconds=round(eta, 1) if eta is not None else None,
    )


def job_status(
    job: ReplayJob,
    cursor: int,
    *,
    pending: int | None = None,
    rate: float | None = None,
    waiting: str | None = None,
) -> JobStatus:
    parked = job.pending if pending is None else pending
    return JobStatus(
        id=job.id,
        destination=job.destination,
        state=job.state,
        waiting=waiting if job.state == "running" else None,
        first_seq=job.first_seq,
        last_seq=job.last_seq,
        cursor=cursor,
        from_time=job.from_time,
        to_time=job.to_time,
        filter=job.filter,
        rate_limit=job.rate,
        progress=progress(job, cursor, parked, rate),
        delivered=job.delivered,
        retried=job.retried,
        dead_lettered=job.dead_lettered,
        filtered=job.filtered,
        pending_retries=parked,
        skipped=job.skipped,
        created_at=_iso(job.created_at),
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        error=job.error or None,
    )


def read_status(log: AnyLog, job: ReplayJob) -> JobStatus:
    """A job's status from the log alone (no daemon): the last committed figures."""
    return job_status(job, job_cursor(log, job))


def _iso(us: int) -> str | None:
    return iso_us(us) if us else None


# -- writing ---------------------------------------------------------------------------


def next_job_id(log: AnyLog) -> str:
    numbers = [int(j.id) for j in list_jobs(log) if j.id.isdigit()]
    return str(max(numbers, default=0) + 1)


def build_job(log: AnyLog, config: Config, request: ReplayRequest) -> ReplayJob:
    """Check the request against the config and the log; the job, not yet stored."""
    if request.destination not in config.destinations:
        known = ", ".join(sorted(config.destinations)) or "none"
        raise ValueError(
            f"no destination {request.destination!r} in the config (configured: {known}); "
            "add it and reload first"
        )
    spec = ReplayFilter(
        sources=request.sources or None,
        event_types=request.event_types or None,
        events=request.events or None,
    )
    check_filter(spec)
    for source in spec.sources or ():
        if source not in config.sources:
            known = ", ".join(sorted(config.sources)) or "none"
            raise ValueError(
                f"--source {source!r} is not a configured source (configured: {known}); "
                "events keep the id of the source they came in through"
            )
    rate = parse_rate(request.rate)
    first_seq, last_seq, from_time, to_time = resolve_range(log, request.from_time, request.to_time)
    return ReplayJob(
        id=next_job_id(log),
        destination=request.destination,
        first_seq=first_seq,
        last_seq=last_seq,
        from_time=from_time,
        to_time=to_time,
        filter=spec,
        rate=rate,
        state="running",
        created_at=now_us(),
    )


def save_job(log: AnyLog, job: ReplayJob) -> None:
    log.write_batch([(REPLAYS, job_key(job.id), encode_job(job))])


def change_state(log: AnyLog, job_id: str, action: str) -> ReplayJob:
    """Pause, resume or cancel a job that no daemon is running; return it as stored."""
    job = load_job(log, job_id)
    check_action(job, action)
    ops: list[tuple[bytes, bytes, bytes | None]] = []
    if action == "pause":
        job.state = "paused"
    elif action == "resume":
        job.state = "running"
    else:
        job.state = "cancelled"
        job.finished_at = now_us()
        job.pending = 0
        ops += [(RETRIES, key, None) for key in parked_keys(log, job.id)]
    ops.append((REPLAYS, job_key(job.id), encode_job(job)))
    log.write_batch(ops)
    return job


def check_action(job: ReplayJob, action: str) -> None:
    if action not in ("pause", "resume", "cancel"):
        raise ValueError(f"unknown action {action!r}; use pause, resume or cancel")
    if job.finished:
        raise JobStateError(f"replay {job.id} is {job.state}; it cannot {action} any more")
    if action == "pause" and job.state == "paused":
        raise JobStateError(f"replay {job.id} is already paused")
    if action == "resume" and job.state == "running":
        raise JobStateError(f"replay {job.id} is already running")
