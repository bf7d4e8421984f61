"""ContractServer: the base of the loopback stand-ins that enforce a SaaS API's contract."""

from __future__ import annotations

import httpx
import pytest

from headwater_spec.conformance import ContractServer, RecordedRequest, Reply

KEY = ("site-1", "key-123456")


class NotesAPI(ContractServer):
    """A two-rule API: Basic auth, and POST /notes with a JSON object."""

    service = "Notes"

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[object] = []

    def answer(self, request: RecordedRequest) -> Reply:
        if request.basic_auth() != KEY:
            return Reply.json({"error": "unauthorized"}, 401)
        if (request.method, request.path) != ("POST", "/notes"):
            return self.violation(f"{request.method} {request.path}: no such route")
        self.notes.append(request.json())
        return Reply.json({"ok": True}, 201)


def test_answers_by_the_rules_and_records_violations() -> None:
    with NotesAPI() as api, httpx.Client(base_url=api.url, auth=KEY) as client:
        assert client.post("/notes", json={"n": 1}).status_code == 201
        assert client.post("/notes", json={"n": 1}, auth=("site-1", "wrong")).status_code == 401
        refused = client.get("/other")
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": "contract violation: GET /other: no such route"},
        )
    assert api.notes == [{"n": 1}]
    assert api.paths() == ["/notes", "/notes", "/other"]
    with pytest.raises(AssertionError, match=r"broke Notes's documented contract.*GET /other"):
        api.assert_no_violations()


def test_scripted_faults_come_first_in_order_and_by_path() -> None:
    with NotesAPI() as api, httpx.Client(base_url=api.url, auth=KEY) as client:
        api.fail_next(429, {"code": 429}, {"Retry-After": "3"}, times=2)
        api.fail_next(502, b"Bad Gateway", path="/notes")
        first, second = client.post("/notes", json={}), client.post("/x", json={})
        assert [(r.status_code, r.headers["retry-after"]) for r in (first, second)] == [
            (429, "3"),
            (429, "3"),
        ]
        assert client.post("/x").status_code == 400  # the 502 waits for /notes
        gateway = client.post("/notes", json={})
        assert (gateway.status_code, gateway.text, gateway.headers["content-type"]) == (
            502,
            "Bad Gateway",
            "text/plain",
        )
        assert client.post("/notes", json={}).status_code == 201
        api.drop_next()
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/notes", json={})
        api.hang_next()
        with pytest.raises(httpx.ReadTimeout):
            client.post("/notes", json={}, timeout=0.3)
    assert api.violations == ["POST /x: no such route"]


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "Basic", "Basic !!!", "Basic c2l0ZS0x"],  # the last: no ':' in "site-1"
)
def test_basic_auth_is_none_without_a_valid_basic_header(header: str) -> None:
    request = RecordedRequest("GET", "/", "", {"authorization": header}, b"", b"")
    assert request.basic_auth() is None
