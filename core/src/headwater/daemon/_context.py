"""What a connector instance gets from the daemon: its identity, and the log behind it.

One class serves every kind of instance: a destination uses the ConnectorContext part, a
pull source the SourceContext part (emit, checkpoints), a push source the PushContext part
(append with rejected items). Checkpoints live in the log's ``checkpoints`` side table under
the instance id, so ``emit_and_checkpoint`` is one commit: a crash never keeps events
without the checkpoint that follows them, or the reverse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from headwater_spec import (
    Event,
    IngestUnavailableError,
    PushReceipt,
    Rejection,
    event_to_dict,
)

from ..log import (
    AppendResult,
    LogClosedError,
    LogFullError,
    LogUnavailableError,
    RejectedItem,
    now_us,
)
from ._metrics import Metrics

_probe = msgspec.msgpack.Encoder()
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
UNSTORABLE = "an integer is outside the 64-bit range the log stores; send it as a string"

CHECKPOINTS = b"checkpoints"
FULL_RETRY_AFTER = 30.0
CLOSED_RETRY_AFTER = 5.0


class ContextLog(Protocol):
    """The part of the log a context uses (the LMDB log, or any backend with side tables).

    A backend may also offer ``submit(source, events, rejected)``, ``append`` in two steps
    (encode and queue now, return the future of the commit): then a push request's decoded
    events are freed before the commit's fsync instead of after it."""

    async def append(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[tuple[bytes, bytes, bytes | None]] = (),
    ) -> AppendResult: ...

    def get_value(self, table: bytes, key: bytes) -> bytes | None: ...


class InstanceLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the instance id to every record's structured fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = kwargs.setdefault("extra", {})
        fields = dict(extra.get("fields", {}))
        fields.setdefault("instance", self.extra["instance"] if self.extra else "")
        extra["fields"] = fields
        return msg, kwargs


class InstanceContext:
    """The context of one configured instance (`[sources.<id>]` / `[destinations.<id>]`)."""

    def __init__(
        self,
        *,
        instance_id: str,
        region: str,
        data_dir: Path,
        log: ContextLog,
        metrics: Metrics,
        endpoint: str | None = None,
    ) -> None:
        self._instance_id = instance_id
        self._region = region
        self._endpoint = endpoint
        self._data_dir = data_dir
        self._log = log
        self._logger = InstanceLogger(
            logging.getLogger(f"headwater.connector.{instance_id}"), {"instance": instance_id}
        )
        self._key = instance_id.encode("utf-8")
        self._accepted = metrics.counter(
            "headwater_events_accepted_total", "Events stored in the log", ("source",)
        ).labels(instance_id)
        self._rejected = metrics.counter(
            "headwater_events_rejected_total",
            "Items that failed validation, kept in the rejected table",
            ("source",),
        ).labels(instance_id)
        self._append_seconds = metrics.histogram(
            "headwater_log_append_seconds",
            "Time from append to durable commit (group commit included)",
        ).labels()

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def region(self) -> str:
        return self._region

    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def logger(self) -> logging.Logger:
        return self._logger  # type: ignore[return-value]

    # -- push sources --------------------------------------------------------------------

    async def append(
        self, events: Sequence[dict[str, Any]], rejected: Sequence[Rejection] = ()
    ) -> PushReceipt:
        now = now_us()
        items = [RejectedItem(self._instance_id, now, r.reason, storable(r.raw)) for r in rejected]
        started = time.perf_counter()
        try:
            waiting = self._queue(events, items, now)
            del events  # encoded by now (with `submit`): only their msgpack waits for the commit
            result = await waiting
        except LogFullError as exc:
            raise IngestUnavailableError(str(exc), FULL_RETRY_AFTER) from None
        except LogClosedError:
            raise IngestUnavailableError(
                "the daemon is shutting down; retry shortly", CLOSED_RETRY_AFTER
            ) from None
        except LogUnavailableError as exc:  # JetStream out of quorum: nothing promised yet
            raise IngestUnavailableError(str(exc), CLOSED_RETRY_AFTER) from None
        self._append_seconds.observe(time.perf_counter() - started)
        self._accepted.inc(result.count)
        self._rejected.inc(len(items))
        return PushReceipt(
            accepted=result.count,
            rejected=len(items),
            first_seq=result.first_seq,
            last_seq=result.last_seq,
        )

    def _queue(
        self, events: Sequence[dict[str, Any]], items: list[RejectedItem], now: int
    ) -> Awaitable[AppendResult]:
        """The commit of ``events``; with a log that has ``submit`` they are encoded and
        queued before this returns, so the caller can drop them while the commit runs."""
        submit = getattr(self._log, "submit", None)
        if submit is None:
            return self._append_whole(events, items, now)
        try:
            future: Awaitable[AppendResult] = submit(self._instance_id, events, items)
        except OverflowError:
            kept, moved = self._split_unstorable(events, now)
            items.extend(moved)
            future = submit(self._instance_id, kept, items)
        return future

    async def _append_whole(
        self, events: Sequence[dict[str, Any]], items: list[RejectedItem], now: int
    ) -> AppendResult:
        try:
            return await self._log.append(self._instance_id, events, items)
        except OverflowError:
            kept, moved = self._split_unstorable(events, now)
            items.extend(moved)
            return await self._log.append(self._instance_id, kept, items)

    def _split_unstorable(
        self, events: Sequence[dict[str, Any]], now: int
    ) -> tuple[list[dict[str, Any]], list[RejectedItem]]:
        """JSON allows integers msgpack cannot carry; such events become rejected items
        (with the big integers as strings) instead of failing the whole request."""
        kept: list[dict[str, Any]] = []
        moved: list[RejectedItem] = []
        for event in events:
            try:
                _probe.encode(event)
            except OverflowError:
                moved.append(RejectedItem(self._instance_id, now, UNSTORABLE, storable(event)))
                continue
            kept.append(event)
        return kept, moved

    # -- pull sources --------------------------------------------------------------------

    async def emit(self, events: Sequence[Event]) -> None:
        await self._emit([event_to_dict(e) for e in events], ())

    async def load_checkpoint(self) -> bytes | None:
        return self._log.get_value(CHECKPOINTS, self._key)

    async def save_checkpoint(self, value: bytes) -> None:
        await self._emit([], ((CHECKPOINTS, self._key, bytes(value)),))

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        await self._emit(
            [event_to_dict(e) for e in events], ((CHECKPOINTS, self._key, bytes(value)),)
        )

    async def _emit(
        self, events: list[dict[str, Any]], side_ops: Sequence[tuple[bytes, bytes, bytes | None]]
    ) -> None:
        started = time.perf_counter()
        result = await self._log.append(self._instance_id, events, side_ops=side_ops)
        self._append_seconds.observe(time.perf_counter() - started)
        self._accepted.inc(result.count)


def storable(value: Any) -> Any:
    """``value`` unchanged when the log can store it, else with out-of-range integers
    turned into strings (the only JSON value msgpack cannot carry)."""
    try:
        _probe.encode(value)
    except OverflowError:
        return _stringify_big_ints(value)
    return value


def _stringify_big_ints(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else str(value)
    if isinstance(value, dict):
        return {k: _stringify_big_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_big_ints(v) for v in value]
    return value
