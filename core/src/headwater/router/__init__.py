"""The router: delivers every event of the log to every destination that wants it.

At least once, in per-user order, with retries that survive restarts and dead letters for
what cannot be delivered; one destination's trouble never slows another or ingestion.
See ``_delivery.py`` for the loop, ``_lane.py`` for ordering, ``_state.py`` for durability.
"""

from ._batcher import Batcher, BatchLimits, estimate_json_size
from ._context import InstanceContext
from ._deadletters import (
    PAGE_LIMIT,
    DeadLetterPage,
    count_dead_letters,
    dead_letter_page,
    list_dead_letters,
    pending_redrive,
    purge_dead_letters,
    request_redrive,
)
from ._delivery import DeliverySettings, DestinationLoop, StartError
from ._filter import EventFilter
from ._lane import lane_index
from ._metrics import Histogram
from ._ratelimit import RateLimiter
from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    RETRIES,
    DeadLetter,
    DestinationRecord,
    PendingRecord,
    RedriveRequest,
    cursor_name,
)
from ._retry import RetryPolicy
from ._router import Router, UnknownDestinationError
from ._settings import SettingsError, delivery_settings, event_filter
from ._status import DestinationStatus, read_status
from ._watermark import Watermark

__all__ = [
    "DEAD_LETTERS",
    "DESTINATIONS",
    "PAGE_LIMIT",
    "RETRIES",
    "BatchLimits",
    "Batcher",
    "DeadLetter",
    "DeadLetterPage",
    "DeliverySettings",
    "DestinationLoop",
    "DestinationRecord",
    "DestinationStatus",
    "EventFilter",
    "Histogram",
    "InstanceContext",
    "PendingRecord",
    "RateLimiter",
    "RedriveRequest",
    "RetryPolicy",
    "Router",
    "SettingsError",
    "StartError",
    "UnknownDestinationError",
    "Watermark",
    "count_dead_letters",
    "cursor_name",
    "dead_letter_page",
    "delivery_settings",
    "estimate_json_size",
    "event_filter",
    "lane_index",
    "list_dead_letters",
    "pending_redrive",
    "purge_dead_letters",
    "read_status",
    "request_redrive",
]
