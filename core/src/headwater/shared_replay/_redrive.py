"""`headwater dlq redrive` on JetStream: a redrive becomes a replay job.

On LMDB the destination's router moves its dead letters into its retry table. On
JetStream no single router owns a destination (its partitions are spread over daemons),
so the redrive request the CLI writes (``destinations`` table, ``redrive\\0<id>``) is
turned into a replay job instead: an empty seq range whose parked retries are the dead
letters recorded up to the request, each as a fresh event (attempts from 0). The job then
runs like any replay, on one daemon at a time, resumable after a kill, listed by
`headwater replay list` with its delivered and dead-lettered counts; it is done when every
redriven event was delivered or dead-lettered again. Per-user order holds among the
redriven events (the job's lanes), not relative to the destination's live traffic, as on
LMDB.

The conversion streams the dead letters in chunks (a destination may hold millions). It
first writes the job, paused and marked as being converted (which reserves its id and
keeps every daemon from running it), then its retries, then deletes the dead letters its
retry keys name, and last sets it running and deletes the request. A daemon killed
anywhere in between leaves the request and the marked job; the next conversion of the
request resumes that job (rewriting the same retry keys), so every dead letter ends up
redriven once. The caller holds a lease per destination (``=00redrive.<destination>``)
so two daemons never convert one request at once.
"""

from __future__ import annotations

from ..log import JetStreamLog, now_us
from ..replay import REPLAYS, ReplayJob
from ..replay._jobs import list_jobs, next_job_id
from ..replay._records import encode_job, job_key, retry_namespace
from ..router import DEAD_LETTERS, DESTINATIONS, RETRIES
from ..router._records import (
    decode_dead_letter,
    decode_redrive,
    encode,
    event_key,
    event_prefix,
    redrive_key,
    seq_of_key,
)
from ..router._redrive import requeued

SideOp = tuple[bytes, bytes, bytes | None]
REDRIVE_CHUNK = 1000
CONVERTING = "redrive request being converted (a daemon stopped doing it resumes it)"


def redrive_requested(log: JetStreamLog, destination: str) -> bool:
    return log.get_value(DESTINATIONS, redrive_key(destination)) is not None


async def redrive_as_job(log: JetStreamLog, destination: str) -> ReplayJob | None:
    """Turn the destination's pending redrive request into a running replay job (None
    when there was no request, or nothing to redrive). Streams the dead letters in
    chunks: memory does not grow with their number."""
    raw = log.get_value(DESTINATIONS, redrive_key(destination))
    if raw is None:
        return None
    up_to = decode_redrive(raw).requested_at
    job = _interrupted(log, destination)
    if job is None:
        last = log.last_seq()
        job = ReplayJob(
            id=next_job_id(log),
            destination=destination,
            first_seq=last + 1,
            last_seq=last,
            state="paused",
            created_at=now_us(),
            error=CONVERTING,
        )
        await log.awrite_batch([(REPLAYS, job_key(job.id), encode_job(job))])
    namespace = retry_namespace(job.id)
    for rows in log.walk(DEAD_LETTERS, event_prefix(destination), chunk=REDRIVE_CHUNK):
        ops: list[SideOp] = []
        for _key, value in rows:
            letter = decode_dead_letter(value)
            if letter.last_attempt_at > up_to:
                continue
            ops.append((RETRIES, event_key(namespace, letter.seq), encode(requeued(letter))))
        if ops:
            await log.awrite_batch(ops)
    # Delete exactly the dead letters that became the job's retries (not those recorded
    # since): the retry keys name them.
    for rows in log.walk(RETRIES, event_prefix(namespace), chunk=REDRIVE_CHUNK):
        await log.awrite_batch(
            [(DEAD_LETTERS, event_key(destination, seq_of_key(key)), None) for key, _ in rows]
        )
    job.pending = log.count(RETRIES, event_prefix(namespace))
    done: list[SideOp] = [(DESTINATIONS, redrive_key(destination), None)]
    if not job.pending:
        await log.awrite_batch([(REPLAYS, job_key(job.id), None), *done])
        return None
    job.state, job.error = "running", ""
    await log.awrite_batch([(REPLAYS, job_key(job.id), encode_job(job)), *done])
    return job


def _interrupted(log: JetStreamLog, destination: str) -> ReplayJob | None:
    """The destination's redrive job whose conversion a stopped daemon left unfinished."""
    for job in list_jobs(log):
        if job.destination == destination and job.state == "paused" and job.error == CONVERTING:
            return job
    return None
