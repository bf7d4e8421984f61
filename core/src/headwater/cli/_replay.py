"""`headwater replay start|list|status|pause|resume|cancel`: send history to a destination.

With a daemon running, every command goes through its admin API (the token is the
config's ``[server] admin_token``), so the job starts, pauses or stops at once. Without
one, the commands work on the log: `start` records the job (it runs when `headwater serve`
next starts), `pause`/`resume`/`cancel` change its stored state, and `list`/`status` show
what was last committed. `start` and `status --watch` show a progress bar while attached;
Ctrl-C detaches, the job goes on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import msgspec

from ..config import Config
from ..log import LogError
from ..replay import (
    JobStateError,
    JobStatus,
    RangeError,
    ReplayRequest,
    UnknownJobError,
    build_job,
    change_state,
    list_jobs,
    load_job,
    read_status,
    save_job,
)
from ._common import config_option, fail, format_option, open_log, print_json
from ._daemon_client import admin_client, error_text, running_daemon
from ._destinations import data_dir_option, load

POLL = 0.5
BAR_WIDTH = 30


@click.group("replay")
def replay_group() -> None:
    """Send the log's history to a destination (a time range, optionally filtered), beside
    live traffic, resumable, with progress."""


# -- talking to the daemon, or to the log ----------------------------------------------


def _from_daemon(config: Config, method: str, path: str, body: Any = None) -> Any | None:
    """The admin API's answer, or None when no daemon runs (exits on an error answer)."""
    daemon = running_daemon(config)
    if daemon is None:
        return None
    with admin_client(config, daemon) as client:
        status, data = client.call(method, path, body)
    if status == 404 and isinstance(data, dict) and data.get("code") == "not_found":
        fail("the running daemon has no replay API (is it an older headwater version?)")
    if status >= 400:
        fail(error_text(data))
    return data


def _status_of(data: Any) -> JobStatus:
    return msgspec.convert(data, JobStatus)


# -- output ----------------------------------------------------------------------------


def _bar(status: JobStatus) -> str:
    p = status.progress
    filled = int(BAR_WIDTH * p.percent / 100) if p.total else BAR_WIDTH
    eta = _duration(p.eta_seconds) if p.eta_seconds is not None else "?"
    rate = f"{p.rate:,.0f} events/s" if p.rate else "-"
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {p.percent:5.1f}%  "
        f"{p.done:,}/{p.total:,} events  {rate}  ETA {eta}"
    )


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _describe(status: JobStatus) -> list[str]:
    lines = [
        f"replay {status.id} -> {status.destination}: {status.state}"
        + (f" (waiting: {status.waiting})" if status.waiting else ""),
        f"  range:    seqs {status.first_seq}..{status.last_seq}"
        + (f"  from {status.from_time}" if status.from_time else "")
        + (f"  to {status.to_time}" if status.to_time else ""),
    ]
    spec = status.filter
    filters = [
        f"{name}={','.join(values)}"
        for name, values in (
            ("sources", spec.sources),
            ("event_types", spec.event_types),
            ("events", spec.events),
        )
        if values
    ]
    if filters or status.rate_limit:
        rate = f"  rate<={status.rate_limit:g}/s" if status.rate_limit else ""
        lines.append(f"  filter:   {' '.join(filters) or 'none'}{rate}")
    lines.append(f"  progress: {_bar(status)}")
    lines.append(
        f"  counts:   delivered {status.delivered:,}  filtered {status.filtered:,}  "
        f"dead-lettered {status.dead_lettered:,}  retrying {status.pending_retries:,}"
        + (f"  skipped {status.skipped:,}" if status.skipped else "")
    )
    return lines


def _watch(config: Config, job_id: str, fmt: str) -> None:
    """Follow a job on the daemon until it ends or pauses (Ctrl-C detaches)."""
    last: JobStatus | None = None
    interactive = sys.stdout.isatty() and fmt == "text"
    try:
        if interactive:
            first = _status_of(_from_daemon(config, "GET", f"/admin/replays/{job_id}"))
            with click.progressbar(
                length=max(1, first.progress.total),
                label=f"replay {job_id} -> {first.destination}",
                show_pos=True,
                show_eta=True,
                item_show_func=lambda s: s,
            ) as bar:
                shown = 0
                while True:
                    last = _status_of(_from_daemon(config, "GET", f"/admin/replays/{job_id}"))
                    done = last.progress.done if last.progress.total else 1
                    bar.update(max(0, done - shown), f"{last.progress.rate:,.0f}/s")
                    shown = max(shown, done)
                    if last.state != "running":
                        break
                    time.sleep(POLL)
        else:
            while True:
                last = _status_of(_from_daemon(config, "GET", f"/admin/replays/{job_id}"))
                if last.state != "running":
                    break
                time.sleep(POLL)
    except KeyboardInterrupt:
        click.echo(f"\ndetached; the job goes on (`headwater replay status {job_id}`)")
        return
    if last is not None:
        _show(last, fmt)


def _show(status: JobStatus, fmt: str) -> None:
    if fmt == "json":
        print_json(status)
    else:
        for line in _describe(status):
            click.echo(line)


# -- commands --------------------------------------------------------------------------


@replay_group.command("start")
@click.option("--destination", "-d", required=True, help="The destination to send to.")
@click.option(
    "--from",
    "from_time",
    default=None,
    metavar="TIME",
    help="Received at or after: ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or a "
    "duration ago (7d, 12h). Default: the oldest event kept.",
)
@click.option(
    "--to",
    "to_time",
    default=None,
    metavar="TIME",
    help="Received before (same forms). Default: the newest event now.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="ID",
    help="Only events that came in through this source (repeatable).",
)
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    metavar="TYPE",
    help="Only this event type: track, identify, page, ... (repeatable).",
)
@click.option(
    "--event",
    "events",
    multiple=True,
    metavar="NAME",
    help="Only events with this name (a track's event, a page's name; repeatable).",
)
@click.option(
    "--rate",
    default=None,
    metavar="N/s",
    help="At most this many events per second (500, 500/s, 30000/m).",
)
@click.option(
    "--attach/--detach",
    default=None,
    help="Follow the job with a progress bar (default: when on a terminal).",
)
@config_option
@format_option
@data_dir_option
def start_command(
    destination: str,
    from_time: str | None,
    to_time: str | None,
    sources: tuple[str, ...],
    event_types: tuple[str, ...],
    events: tuple[str, ...],
    rate: str | None,
    attach: bool | None,
    config_path: Path | None,
    fmt: str,
    data_dir: Path | None,
) -> None:  # fmt: skip
    """Create a replay job sending the events received in [--from, --to) to DESTINATION,
    through its normal delivery path (filters, batching, retries, dead letters), beside
    its live traffic. Replayed events keep their messageId, timestamps and content."""
    config = load(config_path, data_dir)
    request = ReplayRequest(
        destination=destination,
        from_time=from_time,
        to_time=to_time,
        sources=list(sources) or None,
        event_types=list(event_types) or None,
        events=list(events) or None,
        rate=rate,
    )
    data = _from_daemon(config, "POST", "/admin/replays", msgspec.to_builtins(request))
    if data is None:
        _start_offline(config, request, fmt)
        return
    status = _status_of(data)
    if attach is None:
        attach = sys.stdout.isatty()
    if not attach:
        if fmt == "json":
            print_json(status)
        else:
            click.echo(
                f"replay {status.id} started: {status.progress.total:,} events "
                f"(seqs {status.first_seq}..{status.last_seq}) to {status.destination}; "
                f"follow it with `headwater replay status {status.id} --watch`"
            )
        return
    _watch(config, status.id, fmt)


def _start_offline(config: Config, request: ReplayRequest, fmt: str) -> None:
    try:
        with open_log(config) as log:
            job = build_job(log, config, request)
            save_job(log, job)
            status = read_status(log, job)
    except (RangeError, ValueError, LogError) as exc:
        fail(str(exc))
    if fmt == "json":
        print_json(status)
        return
    click.echo(
        f"replay {job.id} created: {job.total:,} events (seqs {job.first_seq}..{job.last_seq}) "
        f"to {job.destination}; no daemon runs, it starts with `headwater serve`"
    )


@replay_group.command("list")
@config_option
@format_option
@data_dir_option
def list_command(config_path: Path | None, fmt: str, data_dir: Path | None) -> None:
    """Every replay job with its state and progress."""
    config = load(config_path, data_dir)
    data = _from_daemon(config, "GET", "/admin/replays")
    if data is not None:
        rows = [_status_of(row) for row in data["replays"]]
    else:
        rows = _offline(config, lambda log: [read_status(log, job) for job in list_jobs(log)])
    if fmt == "json":
        print_json({"replays": rows})
        return
    if not rows:
        click.echo("no replay jobs")
        return
    for status in rows:
        waiting = f" (waiting: {status.waiting})" if status.waiting else ""
        click.echo(f"{status.id:>4}  {status.destination}  {status.state}{waiting}")
        click.echo(f"      {_bar(status)}")


def _offline(config: Config, read: Any) -> Any:
    try:
        with open_log(config, readonly=True) as log:
            return read(log)
    except LogError:
        return []


@replay_group.command("status")
@click.argument("job")
@click.option("--watch", "-w", is_flag=True, help="Follow the job until it ends (Ctrl-C stops).")
@config_option
@format_option
@data_dir_option
def status_command(
    job: str, watch: bool, config_path: Path | None, fmt: str, data_dir: Path | None
) -> None:
    """One job: state, range, filters, a progress bar (done / total, rate, ETA), counts."""
    config = load(config_path, data_dir)
    data = _from_daemon(config, "GET", f"/admin/replays/{job}")
    if data is None:
        try:
            with open_log(config, readonly=True) as log:
                status = read_status(log, load_job(log, job))
        except (UnknownJobError, LogError) as exc:
            fail(str(exc))
        _show(status, fmt)
        return
    if watch:
        _watch(config, job, fmt)
        return
    _show(_status_of(data), fmt)


def _control(action: str) -> click.Command:
    @click.command(action)
    @click.argument("job")
    @config_option
    @format_option
    @data_dir_option
    def command(job: str, config_path: Path | None, fmt: str, data_dir: Path | None) -> None:
        config = load(config_path, data_dir)
        data = _from_daemon(config, "POST", f"/admin/replays/{job}/{action}")
        if data is not None:
            status = _status_of(data)
            where = "by the daemon"
        else:
            try:
                with open_log(config) as log:
                    change_state(log, job, action)
                    status = read_status(log, load_job(log, job))
            except (UnknownJobError, JobStateError, LogError) as exc:
                fail(str(exc))
            where = "in the log (no daemon runs)"
        if fmt == "json":
            print_json(status)
        else:
            click.echo(f"replay {status.id}: {status.state} {where}")

    command.help = {
        "pause": "Stop sending; the job keeps its place (also across restarts).",
        "resume": "Go on sending from where the job paused.",
        "cancel": "Stop the job for good (its parked retries are dropped).",
    }[action]
    return command


for _action in ("pause", "resume", "cancel"):
    replay_group.add_command(_control(_action))
