"""The Headwater connector contract.

Connector packages depend on this distribution only: the hook markers, the event model,
the connector base types, the spec format, and the small helpers every HTTP connector
needs. The daemon (`headwater`) depends on it too.
"""

from ._connector import (
    CheckResult,
    Connector,
    ConnectorContext,
    Destination,
    Route,
    Source,
    SourceContext,
)
from ._event_time import event_time_ms
from ._events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    Alias,
    BaseEvent,
    Event,
    EventError,
    EventType,
    Group,
    Identify,
    Page,
    Screen,
    Track,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
)
from ._hooks import PROJECT_NAME, HeadwaterSpecs, Register, hookimpl, hookspec
from ._http import SecretRedactor, endpoint_url, retry_after_seconds
from ._outcomes import DELIVERED, Delivered, Outcome, Rejected, Retry, log_outcomes
from ._push import (
    HttpRequest,
    HttpResponse,
    IngestUnavailableError,
    PushContext,
    PushHandler,
    PushReceipt,
    Rejection,
)
from ._spec import (
    SPEC_VERSION,
    ConnectorSpec,
    DeliveryHints,
    Direction,
    Examples,
    RegionSpec,
    SpecError,
    meta_schema,
    secret_fields,
    validate_spec,
)

__version__ = "0.1.0"

__all__ = [
    "DELIVERED",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "PROJECT_NAME",
    "SPEC_VERSION",
    "Alias",
    "BaseEvent",
    "CheckResult",
    "Connector",
    "ConnectorContext",
    "ConnectorSpec",
    "Delivered",
    "DeliveryHints",
    "Destination",
    "Direction",
    "Event",
    "EventError",
    "EventType",
    "Examples",
    "Group",
    "HeadwaterSpecs",
    "HttpRequest",
    "HttpResponse",
    "Identify",
    "IngestUnavailableError",
    "Outcome",
    "Page",
    "PushContext",
    "PushHandler",
    "PushReceipt",
    "RegionSpec",
    "Register",
    "Rejected",
    "Rejection",
    "Retry",
    "Route",
    "Screen",
    "SecretRedactor",
    "Source",
    "SourceContext",
    "SpecError",
    "Track",
    "decode_event",
    "encode_event",
    "endpoint_url",
    "event_from_dict",
    "event_time_ms",
    "event_to_dict",
    "hookimpl",
    "hookspec",
    "log_outcomes",
    "meta_schema",
    "retry_after_seconds",
    "secret_fields",
    "validate_spec",
]
