"""Helpers the contract gives destinations: the event's time, one log line per batch."""

from __future__ import annotations

import logging

import pytest

from headwater_spec import (
    DELIVERED,
    Event,
    Outcome,
    Rejected,
    Retry,
    event_from_dict,
    event_time_ms,
    log_outcomes,
)

MS = 1714564800000  # 2024-05-01T12:00:00Z


def track(**times: str) -> Event:
    return event_from_dict({"type": "track", "event": "E", "userId": "u", **times})


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"timestamp": "2024-05-01T12:00:00.000Z", "sentAt": "2030-01-01T00:00:00Z"}, MS),
        ({"originalTimestamp": "2024-05-01T14:00:00+02:00", "receivedAt": "2031-01-01"}, MS),
        ({"timestamp": "yesterday", "receivedAt": "2024-05-01T12:00:00"}, MS),  # no offset: UTC
        ({"sentAt": "2024-05-01T12:00:00.250Z"}, MS + 250),
        ({"timestamp": "soon"}, None),
        ({}, None),
    ],
)
def test_event_time_follows_segments_precedence(
    times: dict[str, str], expected: int | None
) -> None:
    assert event_time_ms(track(**times)) == expected


def test_a_delivered_batch_is_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="acme")
    log_outcomes(logging.getLogger("acme"), "acme", [DELIVERED, DELIVERED])
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "acme: 2 delivered")
    ]


def test_failures_are_one_warning_with_counts_and_the_first_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="acme")
    outcomes: list[Outcome] = [
        DELIVERED,
        Rejected(reason="bad email"),
        Retry(reason="429"),
        Retry(reason="503"),
    ]
    log_outcomes(logging.getLogger("acme"), "acme", outcomes)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "acme: 1 delivered, 2 to retry, 1 rejected; first: 429")
    ]
