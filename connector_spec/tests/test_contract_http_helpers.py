"""The HTTP helpers of the contract: endpoint, Retry-After, secret redaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from headwater_spec import ConnectorSpec, SecretRedactor, endpoint_url, retry_after_seconds

SPEC = ConnectorSpec.from_dict(
    {
        "name": "acme",
        "version": "0.1.0",
        "direction": "out",
        "regions": {
            "us": {"endpoint": "https://api.acme.example/"},
            "eu": {"endpoint": "https://eu.api.acme.example"},
        },
        "config": {"type": "object"},
    }
)


@dataclass
class Context:
    instance_id: str = "crm"
    region: str = "us"
    endpoint: str | None = None
    data_dir: Path = Path(".")
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("test"))


@dataclass
class OldContext:
    """A host from before `endpoint` was a context property."""

    instance_id: str = "crm"
    region: str = "eu"
    data_dir: Path = Path(".")
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("test"))


@pytest.mark.parametrize(
    ("region", "url"), [("us", "https://api.acme.example"), ("eu", "https://eu.api.acme.example")]
)
def test_the_region_picks_its_endpoint_without_trailing_slash(region: str, url: str) -> None:
    assert endpoint_url(SPEC, Context(region=region)) == url


def test_the_endpoint_override_wins_over_the_region() -> None:
    context = Context(region="eu", endpoint="http://127.0.0.1:9999/proxy/")
    assert endpoint_url(SPEC, context) == "http://127.0.0.1:9999/proxy"


def test_a_host_without_the_endpoint_property_gets_the_region_endpoint() -> None:
    assert endpoint_url(SPEC, OldContext()) == "https://eu.api.acme.example"  # type: ignore[arg-type]


def test_a_region_without_endpoint_names_the_instance_region_and_fix() -> None:
    with pytest.raises(ValueError) as caught:
        endpoint_url(SPEC, Context(region="in"))
    assert str(caught.value) == (
        "destination 'crm': acme has no endpoint for region 'in'; set `region` to one of "
        "eu, us or set `endpoint`"
    )


NOW = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Thu, 15 Jan 2026 10:00:12 -0000", 12.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_retry_after_date_is_counted_from_the_clock_by_default() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    wait = retry_after_seconds(later)
    assert wait is not None and 55 <= wait <= 60


def test_redactor_masks_every_secret_longest_first_and_ignores_empty_ones() -> None:
    redact = SecretRedactor(["key-1234", "key-1234-long", "", None])
    assert redact("bad key key-1234-long, then key-1234") == "bad key ***, then ***"
    assert redact("nothing secret") == "nothing secret"
    assert "key-1234" not in repr(redact)
