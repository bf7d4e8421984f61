"""The NATS objects a JetStream log is made of, created on first use by any daemon.

For a log named ``S``: the events stream ``S`` (subjects ``S.p.<n>``, file storage,
``discard: new`` so a full stream refuses appends instead of dropping history), the stream
``S-rejected``, and the KV bucket ``S-state`` (history 1, reads from the leader so a
value one daemon wrote is what another reads). Creating what already exists is not an
error: several daemons start at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import LogError
from ._jetstream_retry import Retrier
from ._partition import partition_wildcard

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue


def events_stream(
    name: str, *, replicas: int, duplicate_window: float, max_size: int | None
) -> Any:
    from nats.js import api

    return api.StreamConfig(
        name=name,
        subjects=[partition_wildcard(name)],
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=duplicate_window,
        max_bytes=max_size if max_size is not None else -1,
        discard=api.DiscardPolicy.NEW,
    )


def rejected_stream(name: str, subject: str, *, replicas: int) -> Any:
    from nats.js import api

    return api.StreamConfig(
        name=name,
        subjects=[subject],
        storage=api.StorageType.FILE,
        num_replicas=replicas,
        discard=api.DiscardPolicy.OLD,
    )


async def ensure_stream(js: JetStreamContext, config: Any, retry: Retrier) -> None:
    """Create the stream, or use the one that exists (another daemon made it first)."""
    from nats.js.errors import BadRequestError, NotFoundError

    try:
        await retry(lambda: js.stream_info(config.name), f"stream {config.name}")
        return
    except NotFoundError:
        pass
    try:
        await retry(lambda: js.add_stream(config), f"creating stream {config.name}")
    except BadRequestError as exc:  # created meanwhile with another config: use it
        if "already in use" not in str(exc):
            raise LogError(f"cannot create JetStream stream {config.name!r}: {exc}") from None


async def ensure_bucket(
    js: JetStreamContext, bucket: str, *, replicas: int, retry: Retrier
) -> KeyValue:
    from nats.js import api
    from nats.js.errors import BadRequestError, BucketNotFoundError

    try:
        return await retry(lambda: js.key_value(bucket), f"bucket {bucket}")
    except BucketNotFoundError:
        pass
    config = api.KeyValueConfig(
        bucket=bucket, history=1, replicas=replicas, storage=api.StorageType.FILE, direct=False
    )
    try:
        return await retry(lambda: js.create_key_value(config), f"creating bucket {bucket}")
    except BadRequestError:
        return await js.key_value(bucket)
