"""How far retention may trim: what the policy wants, and what holds it back.

Trimming never passes what someone still needs: the cursor of every destination the log
has one for (configured, paused, disabled, or removed but not yet forgotten: a removed
destination keeps its place until `headwater destinations forget`), a configured
destination that has not started yet and will start at ``beginning`` or at a time, and
every unfinished replay job (from its cursor, or its first seq if it has not started).
When one of those holds the trim back, the plan names it so the daemon can warn, and
nothing it needs is deleted. The newest event is always kept (the log numbers the next
event after it).
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec

from ..config import Config, RetentionPolicy
from ..log import CURSORS, LmdbLog, key_seq, now_us
from ..replay import list_jobs
from ..replay._jobs import job_cursor

_DESTINATION = b"destination:"


class Hold(msgspec.Struct, frozen=True):
    holder: str
    """``destination <id>`` or ``replay <id>``."""
    seq: int
    """The oldest seq it still needs."""
    reason: str


class TrimPlan(msgspec.Struct, kw_only=True):
    wanted: int
    """The policy would delete seqs up to this one (0: nothing)."""
    allowed: int
    """What may be deleted without taking anything from a cursor or a replay."""
    holds: list[Hold]
    """Those that keep ``allowed`` below ``wanted`` (empty when nothing holds back)."""


def wanted_upto(log: LmdbLog, policy: RetentionPolicy, now: int | None = None) -> int:
    """The highest seq the policy would delete (0: none)."""
    first, last = log.first_seq(), log.last_seq()
    if not first or policy.keeps_everything:
        return 0
    upto = 0
    if policy.max_age is not None:
        cutoff = (now if now is not None else now_us()) - int(policy.max_age * 1_000_000)
        upto = log.seq_at_time(cutoff) - 1
    if policy.max_bytes is not None:
        used = log.events_bytes()
        count = last - first + 1
        if used > policy.max_bytes and count:
            per_event = used / count
            excess = math.ceil((used - policy.max_bytes) / per_event)
            upto = max(upto, first + excess - 1)
    return min(upto, last - 1) if upto >= first else 0


def holds(log: LmdbLog, config: Config) -> list[Hold]:
    out: list[Hold] = []
    for key, raw in log.items(CURSORS, _DESTINATION):
        destination = key[len(_DESTINATION) :].decode("utf-8", "replace")
        reason = (
            "its cursor"
            if destination in config.destinations
            else (
                "its cursor is kept although it is no longer configured; "
                f"`headwater destinations forget {destination}` releases it"
            )
        )
        out.append(Hold(f"destination {destination}", key_seq(raw), reason))
    have_cursor = {h.holder for h in out}
    for instance in config.destinations.values():
        if f"destination {instance.id}" in have_cursor:
            continue
        start = instance.start.strip()
        if start == "now":
            continue
        if start == "beginning":
            seq = max(1, log.first_seq())
        else:
            try:
                moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                continue
            seq = log.seq_at_time(int(moment.timestamp() * 1_000_000))
        out.append(
            Hold(f"destination {instance.id}", seq, f"it has not started (start = {start!r})")
        )
    for job in list_jobs(log):
        if job.finished:
            continue
        seq = job_cursor(log, job)
        if seq <= job.last_seq:
            out.append(Hold(f"replay {job.id}", seq, f"the job is {job.state}"))
    return out


def plan_trim(
    log: LmdbLog, policy: RetentionPolicy, config: Config, *, now: int | None = None
) -> TrimPlan:
    wanted = wanted_upto(log, policy, now)
    if not wanted:
        return TrimPlan(wanted=0, allowed=0, holds=[])
    blocking = sorted((h for h in holds(log, config) if h.seq <= wanted), key=lambda h: h.seq)
    allowed = min([wanted, *(h.seq - 1 for h in blocking)])
    return TrimPlan(wanted=wanted, allowed=max(0, allowed), holds=blocking)
