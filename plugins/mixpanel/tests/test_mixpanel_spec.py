"""The mixpanel spec: what `headwater connectors spec mixpanel` and `validate` rely on.

Only what this service's documentation fixes is pinned here: the meta-schema, the example
configs and the entry point are checked for every shipped connector by its conformance
class and tests/test_conformance_shipped.py.
"""

from __future__ import annotations

from headwater_mixpanel import MixpanelDestination

SPEC = MixpanelDestination.spec


def test_spec_names_the_mixpanel_destination() -> None:
    assert (SPEC.name, SPEC.direction) == ("mixpanel", "out")


def test_regions_and_endpoints_are_mixpanels_documented_hosts() -> None:
    assert {r: s.endpoint for r, s in SPEC.regions.items()} == {
        "us": "https://api.mixpanel.com",
        "eu": "https://api-eu.mixpanel.com",
        "in": "https://api-in.mixpanel.com",
    }
    assert SPEC.default_region == "us"


def test_secrets_are_marked() -> None:
    assert SPEC.secret_fields() == {"project_token", "service_account_secret"}


def test_delivery_hints_follow_the_import_api_limits() -> None:
    assert SPEC.delivery.max_batch == 2000
    assert SPEC.delivery.dedupes_on_message_id is True
    assert SPEC.event_types == ["track", "identify", "page", "screen"]
