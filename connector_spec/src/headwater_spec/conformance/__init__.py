"""The Headwater connector conformance suite, a pytest plugin shipped in headwater-spec.

A connector author subclasses ``DestinationConformance`` or ``SourceConformance`` in a test
module, sets ``connector``, and pytest runs every check (see docs/connectors.md)::

    from headwater_spec.conformance import DestinationConformance
    from headwater_acme import AcmeDestination

    class TestAcmeConformance(DestinationConformance):
        connector = AcmeDestination

        def config(self):
            return {"api_key": "hw-test-key-1234", "timeout": 1}

The suite's version is the headwater-spec version (``SUITE_VERSION``): pin
``headwater-spec==X`` in the connector's test dependencies to pin the checks.
"""

from ._base import ConnectorConformance
from ._context import MemoryContext, SimulatedCrash
from ._contract_server import ContractServer
from ._destination import DestinationConformance, SendResult
from ._leaks import MIN_SECRET_LENGTH
from ._samples import sample_event, sample_events
from ._server import RecordedRequest, Reply, ServiceServer, refused_url
from ._source import SourceConformance
from ._spec_checks import spec_problems
from ._version import CHECKS_SPEC_VERSION, SUITE_VERSION

__all__ = [
    "CHECKS_SPEC_VERSION",
    "MIN_SECRET_LENGTH",
    "SUITE_VERSION",
    "ConnectorConformance",
    "ContractServer",
    "DestinationConformance",
    "MemoryContext",
    "RecordedRequest",
    "Reply",
    "SendResult",
    "ServiceServer",
    "SimulatedCrash",
    "SourceConformance",
    "refused_url",
    "sample_event",
    "sample_events",
    "spec_problems",
]
