"""A replay job's durable state: the router's DeliveryState with the job's own position.

Everything the router's lanes stage (parked retries, dead letters) is committed exactly as
for live delivery; only the cursor and the record written with each commit differ: the
job's cursor (``replay:<id>``) and its ReplayJob record with fresh counters, in the same
transaction, so a restart resumes the job where its committed cursor says.
"""

from __future__ import annotations

from collections.abc import Callable

from ..log import CURSORS, AnyLog, seq_key
from ..router import DestinationRecord
from ..router._state import DeliveryState, SideOp
from ._records import REPLAYS, ReplayJob, cursor_key, encode_job, job_key


class ReplayState(DeliveryState):
    def __init__(self, log: AnyLog, job: ReplayJob, cursor: int) -> None:
        record = DestinationRecord(
            delivered=job.delivered,
            retried=job.retried,
            dead_lettered=job.dead_lettered,
            filtered=job.filtered,
            state="running",
        )
        super().__init__(log, job.destination, cursor, record)
        self.job = job
        self.pending_count: Callable[[], int] = _none
        """Parked events of the job right now (set by the run; stored in the record)."""

    def position_ops(self, low: int) -> list[SideOp]:
        self.job.pending = self.pending_count()
        ops: list[SideOp] = []
        if low != self.saved_cursor:
            ops.append((CURSORS, cursor_key(self.job.id), seq_key(low)))
        ops += self.record_ops()
        return ops

    def record_ops(self) -> list[SideOp]:
        job, record = self.job, self.record
        job.delivered = record.delivered
        job.retried = record.retried
        job.dead_lettered = record.dead_lettered
        job.filtered = record.filtered
        return [(REPLAYS, job_key(job.id), encode_job(job))]


def _none() -> int:
    return 0
