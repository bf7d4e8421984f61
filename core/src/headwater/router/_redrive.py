"""Redrive on LMDB: the destination's router re-queues its dead letters a chunk at a time.

`headwater dlq redrive` writes a request (``redrive\\0<id>``, see _deadletters.py). The
router owning the destination takes it up within about a second (or at its next start):
in one commit it deletes the request and writes a ``RedriveProgress`` (``redriving\\0<id>``)
holding the request's time and a seq cursor over the dead letters. From then on, whenever
the destination has room (fewer parked events than its ``max_in_flight`` window), the
router reads the next chunk of dead letters after the cursor and, for those recorded up to
the request, stages in one commit: the dead letter deleted, a fresh retry (attempts from 0)
written, and the cursor moved past the chunk; the last chunk deletes the progress record.
The redriven events are parked like any retry and go through the lanes (retries, dead
letters again). So memory holds at most about a window of redriven events at a time,
whatever the number of dead letters, and a dead letter leaves the table exactly in the
commit that writes its retry: killed anywhere, a restart resumes from the durable cursor
and nothing is lost or re-queued twice (an event sent before its commit landed is sent
again after a crash: at least once, as any event in flight).

A request that arrives while a redrive runs widens it (its later time) and restarts the
cursor, so the dead letters recorded in between are covered; those already re-queued are
no longer in the table. Dead letters recorded after the request (a redriven event refused
again among them) are left for the next redrive.

On JetStream no single router owns a destination: the request becomes a replay job
instead (headwater.shared_replay._redrive), built from the same ``requeued`` records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headwater_spec import EventError, event_from_dict

from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    RETRIES,
    DeadLetter,
    PendingRecord,
    RedriveProgress,
    decode_dead_letter,
    encode,
    event_key,
    event_prefix,
    redriving_key,
    seq_of_key,
)

if TYPE_CHECKING:
    from ._state import DeliveryState

REDRIVE_CHUNK = 1000
"""Dead letters read per step at most (fewer when the destination has less room)."""


def room(window: int, parked: int) -> int:
    """How many more entries to park now: up to a chunk while fewer than ``window`` are
    parked (0 when the window is full). Shared by the redrive and the replay job's
    loading of its parked retries (replay._run)."""
    return max(0, min(REDRIVE_CHUNK, window - parked))


def requeued(letter: DeadLetter) -> PendingRecord:
    """A dead letter as a fresh retry: attempts from 0, due at once."""
    return PendingRecord(
        seq=letter.seq,
        user=user_of(letter.event),
        source=letter.source,
        received_at=letter.received_at,
        event=letter.event,
    )


def user_of(event: dict[str, object]) -> str:
    try:
        return event_from_dict(event).user_key
    except EventError:
        return str(event.get("userId") or event.get("anonymousId") or "")


def widen(current: RedriveProgress | None, up_to: int, by: str) -> RedriveProgress:
    """The progress after a new request at ``up_to``: from the first dead letter again,
    up to the later of the two times."""
    if current is not None:
        up_to = max(up_to, current.up_to)
    return RedriveProgress(up_to=up_to, requested_by=by)


def redrive_chunk(
    state: DeliveryState, progress: RedriveProgress, limit: int
) -> tuple[list[tuple[PendingRecord, int]], bool]:
    """Stage the re-queueing of the next ``limit`` dead letters after the cursor (those
    recorded up to the request) with the cursor's move; return the records staged, each
    with its encoded size, and whether the redrive is done (its progress then deleted)."""
    destination = state.destination
    after = None if progress.after < 0 else event_key(destination, progress.after)
    rows = state.log.page(DEAD_LETTERS, event_prefix(destination), after=after, limit=limit)
    out: list[tuple[PendingRecord, int]] = []
    for key, raw in rows:
        letter = decode_dead_letter(raw)
        if letter.last_attempt_at > progress.up_to:
            continue
        pending = requeued(letter)
        encoded = encode(pending)
        state.stage(DEAD_LETTERS, key, None)
        state.stage(RETRIES, event_key(destination, letter.seq), encoded)
        out.append((pending, len(encoded)))
    if out:
        state.count("redriven", len(out))
    done = len(rows) < limit
    if done:
        state.stage(DESTINATIONS, redriving_key(destination), None)
    else:
        progress.after = seq_of_key(rows[-1][0])
        state.stage(DESTINATIONS, redriving_key(destination), encode(progress))
    state.touch()
    return out, done
