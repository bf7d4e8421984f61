"""Delivery shared by several daemons over one JetStream log (``[log] backend = "jetstream"``).

Per destination, the stream's partition subjects are leased to daemons; each partition
has a durable consumer (the cursor, kept by the NATS cluster) and is delivered by one
daemon at a time, in order. See ``_service.py`` for the protocol, docs/scale.md for the
guarantees and limits.
"""

from ._consumer import consumer_name
from ._leases import LeaseTable, fair_share, lease_key
from ._service import DestinationRuntime, SharedDelivery
from ._worker import PartitionWorker

__all__ = [
    "DestinationRuntime",
    "LeaseTable",
    "PartitionWorker",
    "SharedDelivery",
    "consumer_name",
    "fair_share",
    "lease_key",
]
