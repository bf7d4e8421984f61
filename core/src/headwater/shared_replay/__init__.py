"""Replay jobs on a JetStream log, shared by every daemon on the stream.

The jobs themselves are the LMDB replay's (``headwater.replay``): the same records, cursor
and parked retries, kept in the stream's KV state bucket, so every daemon lists the same
jobs with the same progress. What this package adds is who runs a job: one daemon at a
time, by a lease in the leases bucket, taken over by another daemon when its holder dies
(see docs/scale.md, "Replay jobs").
"""

from ._leases import ReplayLeases, replay_lease_key
from ._service import SharedReplayService

__all__ = ["ReplayLeases", "SharedReplayService", "replay_lease_key"]
