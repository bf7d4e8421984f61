"""The customerio spec: what `headwater connectors spec customerio` and `validate` rely on.

Only what this service's documentation fixes is pinned here: the meta-schema, the example
configs and the entry point are checked for every shipped connector by its conformance
class and tests/test_conformance_shipped.py.
"""

from __future__ import annotations

from headwater_customerio import CustomerIODestination

SPEC = CustomerIODestination.spec


def test_spec_names_the_customerio_destination() -> None:
    assert (SPEC.name, SPEC.direction) == ("customerio", "out")


def test_regions_and_endpoints_are_customerios_documented_hosts() -> None:
    assert {r: s.endpoint for r, s in SPEC.regions.items()} == {
        "us": "https://track.customer.io",
        "eu": "https://track-eu.customer.io",
    }
    assert SPEC.default_region == "us"


def test_secrets_are_marked() -> None:
    assert SPEC.secret_fields() == {"api_key"}


def test_delivery_hints_follow_the_track_api_limits() -> None:
    assert SPEC.delivery.max_batch_bytes < 500 * 1000
    assert SPEC.delivery.rate_limit == 100
    assert SPEC.delivery.dedupes_on_message_id is True
    assert SPEC.event_types == ["track", "identify", "page", "screen", "alias"]
