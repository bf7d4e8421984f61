"""The amplitude spec: what `headwater connectors spec amplitude` and `validate` rely on.

Only what this service's documentation fixes is pinned here: the meta-schema, the example
configs and the entry point are checked for every shipped connector by its conformance
class and tests/test_conformance_shipped.py.
"""

from __future__ import annotations

from headwater_amplitude import AmplitudeDestination

SPEC = AmplitudeDestination.spec


def test_spec_names_the_amplitude_destination() -> None:
    assert (SPEC.name, SPEC.direction) == ("amplitude", "out")


def test_regions_and_endpoints_are_amplitudes_documented_hosts() -> None:
    assert {r: s.endpoint for r, s in SPEC.regions.items()} == {
        "us": "https://api2.amplitude.com",
        "eu": "https://api.eu.amplitude.com",
    }
    assert SPEC.default_region == "us"


def test_secrets_are_marked() -> None:
    assert SPEC.secret_fields() == {"api_key"}


def test_delivery_hints_follow_the_http_v2_limits() -> None:
    assert SPEC.delivery.max_batch == 2000
    assert SPEC.delivery.dedupes_on_message_id is True
    assert SPEC.event_types == ["track", "identify", "page", "screen"]
