"""Retention on a real LMDB log: the policy's forms, what it wants to trim, what holds it
back (destination cursors, unfinished replays, destinations yet to start at the
beginning), trimming in batches, and the warning when it holds."""

from __future__ import annotations

import logging
import time

import pytest

from headwater.config import Config, ConfigError, ConnectorInstance
from headwater.log import LmdbLog, now_us
from headwater.replay import save_job
from headwater.retention import RetentionService, parse_retention, plan_trim, policy_of

from .conftest import event, job


def config(*destinations: ConnectorInstance, retention: str | None = None) -> Config:
    cfg = Config(destinations={d.id: d for d in destinations})
    cfg.workspace.retention = retention
    return cfg


def webhook(name: str, **kw: object) -> ConnectorInstance:
    return ConnectorInstance(
        id=name, kind="destination", connector="webhook", options={"url": "http://x"}, **kw
    )


@pytest.mark.parametrize(
    ("text", "age", "size"),
    [
        ("400d", 400 * 86400.0, None),
        ("12w", 12 * 604800.0, None),
        ("36h", 36 * 3600.0, None),
        ("50GB", None, 50 * 10**9),
        ("500MiB", None, 500 * 2**20),
        ("1.5 tb", None, 1_500_000_000_000),
    ],
)
def test_retention_is_an_age_or_a_size(text: str, age: float | None, size: int | None) -> None:
    policy = parse_retention(text)
    assert (policy.max_age, policy.max_bytes) == (age, size)


def test_no_retention_keeps_everything_and_a_bad_one_names_the_key() -> None:
    assert parse_retention(None).keeps_everything
    with pytest.raises(ValueError, match=r"retention = 'forever'.*400d.*50GB"):
        parse_retention("forever")
    bad = config(retention="0d")
    with pytest.raises(ConfigError, match=r"`workspace.retention`"):
        policy_of(bad)


def aged_log(log: LmdbLog) -> int:
    """30 events, then a cut-off time, then 20 more; returns the cut-off."""
    log.append_sync("web", [event(n) for n in range(30)])
    time.sleep(0.02)
    cut = now_us()
    time.sleep(0.02)
    log.append_sync("web", [event(n) for n in range(30, 50)])
    return cut


def age_since(cut: int) -> str:
    return f"{(now_us() - cut) / 1e6:.3f}s"


def test_age_retention_trims_what_is_older_than_the_age(log: LmdbLog) -> None:
    cut = aged_log(log)
    cfg = config(retention=age_since(cut))
    plan = plan_trim(log, policy_of(cfg), cfg)
    assert (plan.wanted, plan.allowed, plan.holds) == (30, 30, [])
    assert log.trim(plan.allowed, batch=7) == 30
    assert (log.first_seq(), log.last_seq()) == (31, 50)


def test_a_destination_cursor_holds_the_trim(log: LmdbLog) -> None:
    cut = aged_log(log)
    log.set_cursor("destination:slow", 12)
    cfg = config(webhook("slow"), retention=age_since(cut))
    plan = plan_trim(log, policy_of(cfg), cfg)
    assert (plan.wanted, plan.allowed) == (30, 11)
    assert [(h.holder, h.seq) for h in plan.holds] == [("destination slow", 12)]


def test_a_removed_destination_holds_until_forgotten(log: LmdbLog) -> None:
    cut = aged_log(log)
    log.set_cursor("destination:gone", 5)
    cfg = config(retention=age_since(cut))
    (hold,) = plan_trim(log, policy_of(cfg), cfg).holds
    assert hold.holder == "destination gone" and "forget gone" in hold.reason


def test_unfinished_replays_and_unstarted_destinations_hold(log: LmdbLog) -> None:
    cut = aged_log(log)
    save_job(log, job(20, 45, job_id="7"))
    cfg = config(webhook("fresh", start="beginning"), retention=age_since(cut))
    plan = plan_trim(log, policy_of(cfg), cfg)
    assert plan.allowed == 0
    assert {h.holder for h in plan.holds} == {"destination fresh", "replay 7"}
    done = job(20, 45, job_id="7", state="done")
    save_job(log, done)
    cfg = config(webhook("later", start="now"), retention=age_since(cut))
    assert plan_trim(log, policy_of(cfg), cfg).allowed == 30


def test_size_retention_trims_the_oldest_until_it_fits(log: LmdbLog) -> None:
    big = {"blob": "x" * 2000}
    for start in range(0, 400, 50):
        log.append_sync("web", [event(n, properties=big) for n in range(start, start + 50)])
    used = log.events_bytes()
    cfg = config(retention=f"{used // 2}B")
    plan = plan_trim(log, policy_of(cfg), cfg)
    assert 150 <= plan.allowed <= 260
    log.trim(plan.allowed)
    assert log.stats().events == 400 - plan.allowed


def test_the_newest_event_is_never_trimmed(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(5)])
    assert log.trim(10**9) == 4
    assert log.append_sync("web", [event(99)]).first_seq == 6, "numbering goes on"


async def test_the_service_trims_and_warns_once_about_what_holds(
    log: LmdbLog, caplog: pytest.LogCaptureFixture
) -> None:
    cut = aged_log(log)
    log.set_cursor("destination:slow", 21)
    cfg = config(webhook("slow"), retention=age_since(cut))
    service = RetentionService(log, lambda: cfg)
    with caplog.at_level(logging.WARNING, logger="headwater.retention"):
        first = await service.run_once()
        second = await service.run_once()
    assert (first.deleted, second.deleted) == (20, 0)
    assert log.first_seq() == 21
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "destination slow" in warnings[0]
