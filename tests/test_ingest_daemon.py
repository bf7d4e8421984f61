"""`headwater serve` as an operator sees it: probes, metrics, admin API, the embedded
default config, config errors, a full log, and its logs."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from headwater.daemon import read_runfile
from headwater.testing import TEST_ADMIN_TOKEN, TEST_CONFIG, TEST_WRITE_KEY, DaemonProcess

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()}
Start = Callable[..., DaemonProcess]


def batch(n: int, prefix: str = "m", pad: int = 0) -> dict[str, object]:
    return {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "messageId": f"{prefix}{i}",
             "properties": {"pad": "x" * pad}}
            for i in range(n)
        ]
    }  # fmt: skip


@pytest.mark.timeout(60)
def test_probes_metrics_and_admin_api(headwater_daemon: Start) -> None:
    daemon = headwater_daemon()
    with daemon.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
        assert http.post("/v1/batch", json=batch(5), headers=AUTH).status_code == 200
        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = metrics.text
        assert 'headwater_events_accepted_total{source="web"} 5' in text
        assert 'headwater_http_requests_total{route="/v1/batch",status="200"} 1' in text
        assert "headwater_log_append_seconds_count 1" in text
        assert "headwater_log_events 5" in text
        assert "headwater_log_bytes " in text

        assert http.get("/admin/sources").status_code == 401
        wrong = http.get("/admin/sources", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        sources = http.get("/admin/sources", headers=daemon.admin_headers()).json()["sources"]
        assert sources[0]["id"] == "web" and sources[0]["mode"] == "push"
        assert "POST /v1/batch" in sources[0]["routes"]
        stats = http.get("/admin/log", headers=daemon.admin_headers()).json()
        assert stats["events"] == 5
    info = read_runfile(daemon.data_dir)
    assert info is not None and info.pid == daemon.pid and info.url == daemon.url
    assert daemon.terminate() == 0
    assert read_runfile(daemon.data_dir) is None


@pytest.mark.timeout(60)
def test_logs_are_json_lines_without_secrets(headwater_daemon: Start) -> None:
    daemon = headwater_daemon()
    with daemon.client() as http:
        http.post("/v1/track", json={"userId": "u", "event": "E"}, headers=AUTH)
        http.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers={"Authorization": "Bearer bad"}
        )
    assert daemon.terminate() == 0
    lines = daemon.stderr().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["msg"] for r in records] == ["started", "stopping", "stopped"]
    assert records[0]["url"] == daemon.url and records[0]["sources"] == ["web"]
    text = daemon.stderr() + daemon.stdout()
    assert TEST_WRITE_KEY not in text and TEST_ADMIN_TOKEN not in text


@pytest.mark.timeout(60)
def test_embedded_default_config_prints_a_working_curl(tmp_path: Path) -> None:
    """The README's promise: `headwater serve` with no config, then the printed curl."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--listen", "127.0.0.1:0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HEADWATER_DEV_WRITE_KEY": "dev-key-for-test"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "write key: dev-key-for-test" in first
        curl_line = proc.stdout.readline()
        command = shlex.split(curl_line.split("send an event:", 1)[1])
        assert command[0] == "curl"
        # Run what was printed, with httpx standing in for curl (same request).
        user = command[command.index("-u") + 1]
        url = next(arg for arg in command if arg.startswith("http://"))
        data = command[command.index("-d") + 1]
        response = httpx.post(
            url,
            content=data,
            auth=(user.rstrip(":"), ""),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1
        assert (tmp_path / "headwater-data" / "serve.json").exists()
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


@pytest.mark.timeout(60)
def test_a_bad_config_exits_2_and_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "headwater.toml"
    config.write_text('[sources.web]\nconnector = "tracking-api"\nwrite_keys = []\n')
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "serve", "-c", str(config), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "sources.web.write_keys" in done.stderr
    assert str(config) in done.stderr


@pytest.mark.timeout(60)
def test_a_destination_configured_as_a_source_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "headwater.toml"
    config.write_text('[sources.oops]\nconnector = "file"\npath = "x.jsonl"\n')
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "serve", "-c", str(config), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "move it under [destinations]" in done.stderr


@pytest.mark.timeout(60)
def test_a_busy_port_exits_1_with_the_address(headwater_daemon: Start, tmp_path: Path) -> None:
    daemon = headwater_daemon()
    config = tmp_path / "headwater.toml"
    config.write_text(TEST_CONFIG)
    listen = daemon.url.removeprefix("http://")
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "serve", "-c", str(config), "--listen", listen,
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on {listen}" in done.stderr


@pytest.mark.timeout(90)
def test_a_full_log_answers_503_with_retry_after_and_stores_nothing(
    headwater_daemon: Start,
) -> None:
    daemon = headwater_daemon(TEST_CONFIG + "\n[log]\nmax_size = 2097152\n")
    with daemon.client() as http:
        statuses = []
        for n in range(400):
            response = http.post("/v1/batch", json=batch(50, f"r{n}-", pad=400), headers=AUTH)
            statuses.append(response.status_code)
            if response.status_code != 200:
                break
        assert statuses[-1] == 503, statuses
        assert response.headers["retry-after"].isdigit()
        assert response.json()["code"] == "unavailable"
        stored = daemon.records()
        assert len(stored) == 50 * (len(statuses) - 1)  # every 200, nothing of the 503
        assert http.get("/healthz").status_code == 200


@pytest.mark.timeout(60)
def test_each_write_key_lands_in_its_own_source(headwater_daemon: Start) -> None:
    daemon = headwater_daemon(
        '[sources.web]\nconnector = "tracking-api"\nwrite_keys = ["key-web"]\n'
        '[sources.mobile]\nconnector = "tracking-api"\nwrite_keys = ["key-mobile", "key-old"]\n'
        'cors_origins = ["https://app.example"]\n'
    )
    with daemon.client() as http:
        for key, message_id in (("key-web", "w"), ("key-mobile", "m"), ("key-old", "o")):
            event = {"userId": "u", "event": "E", "messageId": message_id}
            assert http.post("/v1/track", json=event, auth=(key, "")).status_code == 200
        body = {"writeKey": "key-mobile", "batch": [{"type": "identify", "userId": "u",
                                                     "messageId": "b"}]}  # fmt: skip
        assert http.post("/v1/batch", json=body).status_code == 200
        nobody = http.post("/v1/track", json={"userId": "u", "event": "E"}, auth=("nope", ""))
        assert nobody.status_code == 401
        preflight = http.options("/v1/batch", headers={"Origin": "https://app.example"})
        assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example")
    sources = {r.event["messageId"]: r.source for r in daemon.records()}
    assert sources == {"w": "web", "m": "mobile", "o": "mobile", "b": "mobile"}
