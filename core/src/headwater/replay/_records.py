"""What a replay job keeps in the log, and under which keys.

- ``replays``  ``job\\0<id>`` -> ReplayJob (the request, its state and its counters)
- ``cursors``  ``replay:<id>`` -> the lowest seq of the range not yet finished
- ``retries``  ``\\0replay\\0<id>\\0<seq>`` -> the router's PendingRecord, for the job's
               events waiting for another attempt (a namespace no destination id can
               collide with, so the destination's own retry queue never adopts them)
- ``dead_letters`` the destination's own table: a replayed event that is refused for good is
               the destination's dead letter like any other, listed and redriven with
               `headwater dlq`.

The job record and the cursor are rewritten in the same transaction by the job's committer
(see _state.py), so a reader of the log always sees a consistent pair.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..log import key_seq

REPLAYS = b"replays"
_SEP = b"\x00"
_JOB_PREFIX = b"job" + _SEP

JobState = Literal["running", "paused", "done", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"done", "cancelled"})


class ReplayFilter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Which events of the range the job sends (None: all). Applied on top of the
    destination's own filters (its `events`, `sources` and the events' `integrations`)."""

    sources: list[str] | None = None
    event_types: list[str] | None = None
    events: list[str] | None = None
    """Event names: a track's ``event``, a page's or screen's ``name``."""


class ReplayJob(msgspec.Struct, kw_only=True):
    """One replay: send log seqs ``first_seq..last_seq`` (inclusive) to ``destination``.

    The seq range is fixed when the job is created (from its time range, or up to the last
    event then), so a job always ends; events arriving later are the destination's live
    traffic. Times are microseconds since the epoch."""

    id: str
    destination: str
    first_seq: int
    last_seq: int
    from_time: str | None = None
    to_time: str | None = None
    filter: ReplayFilter = msgspec.field(default_factory=ReplayFilter)
    rate: float | None = None
    """Most events per second sent by this job (None: as fast as the destination takes)."""
    state: JobState = "running"
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    pending: int = 0
    """Events parked for another attempt at the last commit."""
    skipped: int = 0
    """Events of the range no longer in the log when the job reached them (retention)."""
    error: str = ""

    @property
    def total(self) -> int:
        return max(0, self.last_seq - self.first_seq + 1)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


def job_key(job_id: str) -> bytes:
    return _JOB_PREFIX + job_id.encode()


def job_prefix() -> bytes:
    return _JOB_PREFIX


def cursor_name(job_id: str) -> str:
    return f"replay:{job_id}"


def cursor_key(job_id: str) -> bytes:
    return cursor_name(job_id).encode()


def retry_namespace(job_id: str) -> str:
    """The 'destination' under which the job's parked events are keyed in ``retries``."""
    return f"\x00replay\x00{job_id}"


def decode_cursor(raw: bytes | None) -> int | None:
    return None if raw is None else key_seq(raw)


_encoder = msgspec.msgpack.Encoder()
_job = msgspec.msgpack.Decoder(ReplayJob)


def encode_job(job: ReplayJob) -> bytes:
    return _encoder.encode(job)


def decode_job(raw: bytes) -> ReplayJob:
    return _job.decode(raw)
