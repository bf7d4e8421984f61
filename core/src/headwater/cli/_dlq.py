"""`headwater dlq list|redrive|purge DEST`: the dead letters of one destination.

`list` and `purge` work on the log directly (also while a daemon runs). `redrive` records a
request in the log that the router owning the destination carries out: a running daemon
within about a second (the command waits for it and reports), otherwise the next
`headwater serve` at start. Redriven events get fresh attempts and go through the normal
delivery path, in log order per user.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..daemon import read_runfile
from ..log import iso_us
from ..router import (
    PAGE_LIMIT,
    DeadLetter,
    count_dead_letters,
    dead_letter_page,
    pending_redrive,
    purge_dead_letters,
    request_redrive,
)
from ..router._deadletters import MAX_PAGE_LIMIT
from ..router._status import pid_alive
from ._common import config_option, format_option, open_log, print_json
from ._destinations import data_dir_option, load, require_destination

REDRIVE_WAIT = 10.0


@click.group("dlq")
def dlq_group() -> None:
    """Dead letters: events a destination refused, or that ran out of retries."""


def _view(letter: DeadLetter) -> dict[str, Any]:
    return {
        "destination": letter.destination,
        "seq": letter.seq,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "first_attempt_at": iso_us(letter.first_attempt_at),
        "last_attempt_at": iso_us(letter.last_attempt_at),
        "source": letter.source,
        "received_at": iso_us(letter.received_at),
        "event": letter.event,
    }


@dlq_group.command("list")
@click.argument("destination")
@config_option
@format_option
@data_dir_option
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_PAGE_LIMIT),
    default=PAGE_LIMIT,
    show_default=True,
    help="Show at most this many (one page, oldest first).",
)
@click.option(
    "--after", type=click.IntRange(min=0), default=None, metavar="SEQ",
    help="Start after this seq: the `next` of the previous page.",
)  # fmt: skip
def list_command(
    destination: str,
    config_path: Path | None,
    fmt: str,
    data_dir: Path | None,
    limit: int,
    after: int | None,
) -> None:
    """The dead letters of DESTINATION, oldest event first, with the reason, a page at a
    time (the next page: --after the seq the page ends with, `next` in JSON)."""
    config = load(config_path, data_dir)
    require_destination(config, destination)
    with open_log(config, readonly=True) as log:
        page = dead_letter_page(log, destination, limit=limit, after=after)
        request = pending_redrive(log, destination)
    if fmt == "json":
        print_json(
            {
                "destination": destination,
                "dead_letters": [_view(d) for d in page.letters],
                "next": page.next,
                "redrive_requested": request is not None,
            }
        )
        return
    if not page.letters:
        click.echo(
            f"{destination}: no dead letters" + (f" after seq {after}" if after is not None else "")
        )
    for d in page.letters:
        event = d.event
        click.echo(
            f"seq {d.seq}  {iso_us(d.last_attempt_at)}  {event.get('type')} "
            f"{event.get('messageId')}  attempts={d.attempts}  {d.reason}"
        )
    if page.next is not None:
        click.echo(f"more: headwater dlq list {destination} --limit {limit} --after {page.next}")
    if request is not None:
        click.echo(f"a redrive was requested at {iso_us(request.requested_at)} and is pending")


def _daemon_pid(data_dir: Path) -> int | None:
    info = read_runfile(data_dir)
    return info.pid if info is not None and pid_alive(info.pid) else None


@dlq_group.command("redrive")
@click.argument("destination")
@config_option
@data_dir_option
@click.option(
    "--wait/--no-wait", default=True, show_default=True,
    help="Wait for a running daemon to pick the request up.",
)  # fmt: skip
def redrive_command(
    destination: str, config_path: Path | None, data_dir: Path | None, wait: bool
) -> None:
    """Re-queue the dead letters of DESTINATION for delivery (after fixing the cause)."""
    config = load(config_path, data_dir)
    require_destination(config, destination)
    with open_log(config) as log:
        count = count_dead_letters(log, destination)
        if not count:
            click.echo(f"{destination}: no dead letters to redrive")
            return
        request_redrive(log, destination)
        pid = _daemon_pid(config.data_dir)
        if config.log.backend == "jetstream":  # any daemon on the stream takes it up
            _wait_shared(log, destination, count, REDRIVE_WAIT if wait else 0.0)
            return
        if pid is None:
            click.echo(
                f"{destination}: {count} dead letters will be re-queued when "
                "`headwater serve` next starts"
            )
            return
        deadline = time.monotonic() + (REDRIVE_WAIT if wait else 0.0)
        while pending_redrive(log, destination) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if pending_redrive(log, destination) is None:
            click.echo(
                f"{destination}: the daemon (pid {pid}) took up the redrive of {count} dead "
                "letters; it re-queues them as the destination has room"
            )
        else:
            click.echo(
                f"{destination}: redrive of {count} dead letters requested; the daemon "
                f"(pid {pid}) picks it up while the destination runs"
            )


def _wait_shared(log: Any, destination: str, count: int, wait: float) -> None:
    """JetStream: one of the daemons on the stream turns the request into a replay job."""
    deadline = time.monotonic() + wait
    while pending_redrive(log, destination) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if pending_redrive(log, destination) is None:
        click.echo(
            f"{destination}: {count} dead letters re-queued as a replay job "
            "(`headwater replay list`)"
        )
    else:
        click.echo(
            f"{destination}: redrive of {count} dead letters requested; the first daemon "
            "on the stream to see it re-queues them as a replay job"
        )


@dlq_group.command("purge")
@click.argument("destination")
@config_option
@data_dir_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def purge_command(
    destination: str, config_path: Path | None, data_dir: Path | None, yes: bool
) -> None:
    """Delete the dead letters of DESTINATION for good."""
    config = load(config_path, data_dir)
    require_destination(config, destination)
    with open_log(config) as log:
        count = count_dead_letters(log, destination)
        if not count:
            click.echo(f"{destination}: no dead letters")
            return
        if not yes:
            click.confirm(f"delete {count} dead letters of {destination} for good?", abort=True)
        purged = purge_dead_letters(log, destination)
    click.echo(f"{destination}: {purged} dead letters deleted")
