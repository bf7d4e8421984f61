"""`headwater import` (JSON Lines and CSV, bad lines reported by number and none stored),
`headwater log stats` (also while another process is writing) and `--version`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from headwater import __version__
from headwater.cli import cli
from headwater.log import LmdbLog, iso_us

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "headwater.toml"
    path.write_text('[workspace]\nname = "test"\ndata_dir = "data"\n')
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def stored(tmp_path: Path) -> list[dict[str, object]]:
    if not (tmp_path / "data" / "log" / "data.mdb").exists():
        return []
    with LmdbLog(tmp_path / "data", readonly=True) as log:
        return [r.event for r in log.scan()]


def test_import_of_json_lines_appends_every_event(tmp_path: Path, config: Path) -> None:
    lines = [
        {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m-1", "plan": "pro"},
        {"type": "identify", "anonymousId": "a1", "traits": {"email": "a@example.com"}},
        {"type": "page", "userId": "u1", "name": "Home", "timestamp": "2023-01-01T00:00:00Z"},
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2])
    source = tmp_path / "events.jsonl"
    source.write_text(text)  # a blank line, and no newline at the end

    result = run("import", str(source), "-c", str(config), "--source", "backfill")
    assert result.exit_code == 0, result.output
    assert "imported 3 events" in result.stdout and "(seq 1..3)" in result.stdout

    events = stored(tmp_path)
    assert [e["type"] for e in events] == ["track", "identify", "page"]
    assert events[0]["messageId"] == "m-1" and events[0]["plan"] == "pro"  # kept as sent
    assert all(e["messageId"] and e["receivedAt"] for e in events)  # server fields added
    assert events[2]["timestamp"] == "2023-01-01T00:00:00Z"
    with LmdbLog(tmp_path / "data", readonly=True) as log:
        assert {r.source for r in log.scan()} == {"backfill"}


def test_import_with_bad_lines_reports_each_by_number_and_stores_none(
    tmp_path: Path, config: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        "\n".join(
            [
                '{"type": "track", "event": "Ok", "userId": "u"}',
                '{"type": "track", "userId": "u"}',
                "{not json",
                '{"type": "identify", "traits": {}}',
                '{"type": "track", "event": "Ok again", "userId": "u"}',
                '["an", "array"]',
            ]
        )
    )
    result = run("import", str(source), "-c", str(config))
    assert result.exit_code == 1
    assert f"{source}:2: Object missing required field `event`" in result.stderr
    assert f"{source}:3: not valid JSON" in result.stderr
    assert f"{source}:4: `userId` or `anonymousId` is required" in result.stderr
    assert f"{source}:6: an event must be a JSON object" in result.stderr
    assert f"{source}:1:" not in result.stderr and f"{source}:5:" not in result.stderr
    assert "4 bad line(s)" in result.stderr and "nothing was imported" in result.stderr
    assert stored(tmp_path) == []

    skipped = run("import", str(source), "-c", str(config), "--skip-invalid")
    assert skipped.exit_code == 1
    assert "imported 2 events" in skipped.stdout and "skipped 4 bad line(s)" in skipped.stdout
    assert [e["event"] for e in stored(tmp_path)] == ["Ok", "Ok again"]


def test_import_of_a_csv_of_people_makes_one_identify_per_row(tmp_path: Path, config: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text(
        "\ufeffemail,user_id,plan,note\n"
        "a@example.com,u-1,pro,\n"
        'b@example.com,u-2,free,"two\nlines"\n'
    )
    result = run("import", str(source), "-c", str(config), "--id-column", "user_id")
    assert result.exit_code == 0, result.output
    assert "imported 2 events" in result.stdout
    events = stored(tmp_path)
    assert [(e["type"], e["userId"]) for e in events] == [("identify", "u-1"), ("identify", "u-2")]
    assert events[0]["traits"] == {"email": "a@example.com", "plan": "pro"}  # empty cells left out
    assert events[1]["traits"] == {"email": "b@example.com", "plan": "free", "note": "two\nlines"}


def test_a_csv_with_bad_rows_reports_their_lines_and_stores_none(
    tmp_path: Path, config: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text("id,name\nu-1,Ann\n,Bob\nu-3,Cy,extra\nu-4,Di\n")
    result = run("import", str(source), "-c", str(config))
    assert result.exit_code == 1
    assert f"{source}:3: empty 'id'; every row needs a user id" in result.stderr
    assert f"{source}:4: 3 values for 2 columns" in result.stderr
    assert stored(tmp_path) == []

    no_column = run("import", str(source), "-c", str(config), "--id-column", "uid")
    assert no_column.exit_code == 1
    assert f"{source}:1: no column 'uid' (columns: id, name); pass --id-column" in no_column.stderr
    assert stored(tmp_path) == []


def test_import_format_can_be_forced_and_a_config_error_exits_2(
    tmp_path: Path, config: Path
) -> None:
    source = tmp_path / "people.txt"
    source.write_text("id\nu-1\n")
    result = run("import", str(source), "-c", str(config), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert stored(tmp_path)[0]["userId"] == "u-1"
    broken = tmp_path / "broken.toml"
    broken.write_text("[workspace]\ndata_dri = 'x'\n")
    failed = run("import", str(source), "-c", str(broken))
    assert failed.exit_code == 2
    assert f"{broken}: `workspace.data_dri`: unknown key; did you mean `data_dir`?" in failed.stderr


def test_log_stats_json_reports_the_log(tmp_path: Path, config: Path) -> None:
    missing = run("log", "stats", "-c", str(config), "--format", "json")
    assert missing.exit_code == 1 and "no event log at" in missing.stderr
    with LmdbLog(tmp_path / "data") as log:
        first = log.append_sync("s", [{"type": "identify", "userId": "u"}] * 3)
        last = log.append_sync("s", [{"type": "identify", "userId": "u"}] * 2)
    result = run("log", "stats", "-c", str(config), "--format", "json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {"events", "first_seq", "last_seq", "first_time", "last_time", "bytes"} <= set(stats)
    assert (stats["events"], stats["first_seq"], stats["last_seq"]) == (5, 1, 5)
    assert stats["first_time"] == iso_us(first.received_at)
    assert stats["last_time"] == iso_us(last.received_at)
    assert stats["bytes"] > 0
    text = run("log", "stats", "-c", str(config))
    assert "events:    5" in text.stdout and "sequence:  1 .. 5" in text.stdout


WRITER = textwrap.dedent(
    """
    import sys
    from headwater.log import LmdbLog, iso_us

    log = LmdbLog(sys.argv[1])
    log.append_sync("daemon", [{"type": "identify", "userId": "u"}] * 10)
    print("ready", flush=True)
    n = 10
    while sys.stdin.readline().strip() == "more":
        result = log.append_sync("daemon", [{"type": "identify", "userId": "u"}] * 5)
        n = result.last_seq
        print(n, flush=True)
    log.close()
    """
)


def test_log_stats_works_while_another_process_holds_the_log_open_for_writing(
    tmp_path: Path, config: Path
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "data")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "ready"
        for expected in (10, 15, 20):
            result = run("log", "stats", "-c", str(config), "--format", "json")
            assert result.exit_code == 0, result.output
            stats = json.loads(result.stdout)
            assert (stats["events"], stats["last_seq"]) == (expected, expected)
            writer.stdin.write("more\n")
            writer.stdin.flush()
            assert int(writer.stdout.readline()) == expected + 5
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    assert writer.returncode == 0


def test_version_and_the_installed_console_script() -> None:
    assert run("--version").stdout.strip() == f"headwater, version {__version__}"
    done = subprocess.run(
        [Path(sys.executable).with_name("headwater"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and __version__ in done.stdout
