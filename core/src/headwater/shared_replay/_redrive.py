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

The conversion writes the job and its retries first and deletes the dead letters and the
request after: a daemon killed in between leaves both, and the request is converted again
(the events then go out twice: at least once). The caller holds a lease per destination
(``=00redrive.<destination>``) so two daemons never convert one request at once.
"""

from __future__ import annotations

from headwater_spec import EventError, event_from_dict

from ..log import JetStreamLog, now_us
from ..replay import REPLAYS, ReplayJob
from ..replay._jobs import next_job_id
from ..replay._records import encode_job, job_key, retry_namespace
from ..router import DEAD_LETTERS, DESTINATIONS, RETRIES, PendingRecord
from ..router._records import (
    decode_dead_letter,
    decode_redrive,
    encode,
    event_key,
    event_prefix,
    redrive_key,
)

SideOp = tuple[bytes, bytes, bytes | None]


def redrive_requested(log: JetStreamLog, destination: str) -> bool:
    return log.get_value(DESTINATIONS, redrive_key(destination)) is not None


async def redrive_as_job(log: JetStreamLog, destination: str) -> ReplayJob | None:
    """Turn the destination's pending redrive request into a running replay job (None
    when there was no request, or nothing to redrive)."""
    raw = log.get_value(DESTINATIONS, redrive_key(destination))
    if raw is None:
        return None
    up_to = decode_redrive(raw).requested_at
    letters = []
    for key, value in log.items(DEAD_LETTERS, event_prefix(destination)):
        letter = decode_dead_letter(value)
        if letter.last_attempt_at <= up_to:
            letters.append((key, letter))
    done: list[SideOp] = [(DESTINATIONS, redrive_key(destination), None)]
    if not letters:
        await log.awrite_batch(done)
        return None
    last = log.last_seq()
    job = ReplayJob(
        id=next_job_id(log),
        destination=destination,
        first_seq=last + 1,
        last_seq=last,
        state="running",
        created_at=now_us(),
        pending=len(letters),
    )
    namespace = retry_namespace(job.id)
    ops: list[SideOp] = []
    for _key, letter in letters:
        pending = PendingRecord(
            seq=letter.seq,
            user=_user_of(letter.event),
            source=letter.source,
            received_at=letter.received_at,
            event=letter.event,
        )
        ops.append((RETRIES, event_key(namespace, letter.seq), encode(pending)))
    ops.append((REPLAYS, job_key(job.id), encode_job(job)))
    await log.awrite_batch(ops)
    await log.awrite_batch([(DEAD_LETTERS, key, None) for key, _ in letters] + done)
    return job


def _user_of(event: dict[str, object]) -> str:
    try:
        return event_from_dict(event).user_key
    except EventError:
        return str(event.get("userId") or event.get("anonymousId") or "")
