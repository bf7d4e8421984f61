"""The route table: matching, 404/405, declines, admin auth, per-route metrics."""

from __future__ import annotations

import msgspec

from headwater.daemon import Metrics, RouteTable
from headwater_spec import HttpRequest, HttpResponse


def ok(tag: str, *, decline: bool = False):  # type: ignore[no-untyped-def]
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json({"tag": tag, "params": request.params}, decline=decline)

    return handler


def body(response: HttpResponse) -> object:
    return msgspec.json.decode(response.body)


def request(method: str, path: str, **headers: str) -> HttpRequest:
    return HttpRequest(method=method, path=path, headers=headers)


async def test_exact_and_parameterised_paths() -> None:
    table = RouteTable(Metrics())
    table.add("GET", "/a", ok("a"))
    table.add("GET", "/jobs/{job_id}/log", ok("job"))
    assert body(await table.dispatch(request("GET", "/a/"))) == {"tag": "a", "params": {}}
    found = await table.dispatch(request("GET", "/jobs/j%201/log"))
    assert body(found) == {"tag": "job", "params": {"job_id": "j 1"}}


async def test_unknown_path_is_404_and_wrong_method_405() -> None:
    table = RouteTable(Metrics())
    table.add("POST", "/v1/batch", ok("b"))
    missing = await table.dispatch(request("POST", "/nope"))
    assert missing.status == 404 and body(missing)["code"] == "not_found"  # type: ignore[index]
    wrong = await table.dispatch(request("GET", "/v1/batch"))
    assert wrong.status == 405 and ("Allow", "POST") in wrong.headers


async def test_declined_requests_go_to_the_next_handler() -> None:
    table = RouteTable(Metrics())
    table.add("POST", "/x", ok("first", decline=True))
    table.add("POST", "/x", ok("second"))
    assert body(await table.dispatch(request("POST", "/x")))["tag"] == "second"  # type: ignore[index]
    only_declines = RouteTable(Metrics())
    only_declines.add("POST", "/x", ok("one", decline=True))
    only_declines.add("POST", "/x", ok("two", decline=True))
    last = await only_declines.dispatch(request("POST", "/x"))
    assert body(last)["tag"] == "two"  # type: ignore[index]


async def test_admin_routes_need_the_bearer_token() -> None:
    table = RouteTable(Metrics(), admin_token="s3cret")
    table.add("GET", "/admin/things", ok("admin"))
    assert (await table.dispatch(request("GET", "/admin/things"))).status == 401
    wrong = await table.dispatch(request("GET", "/admin/things", authorization="Bearer nope"))
    assert wrong.status == 401
    right = await table.dispatch(request("GET", "/admin/things", authorization="Bearer s3cret"))
    assert right.status == 200


async def test_admin_routes_are_off_without_a_token() -> None:
    table = RouteTable(Metrics(), admin_token=None)
    table.add("GET", "/admin/things", ok("admin"))
    response = await table.dispatch(request("GET", "/admin/things", authorization="Bearer x"))
    assert response.status == 403
    assert "admin_token" in body(response)["message"]  # type: ignore[index]


async def test_requests_are_counted_per_route_template() -> None:
    metrics = Metrics()
    table = RouteTable(metrics)
    table.add("GET", "/jobs/{id}", ok("job"))
    await table.dispatch(request("GET", "/jobs/1"))
    await table.dispatch(request("GET", "/jobs/2"))
    await table.dispatch(request("GET", "/else"))
    text = metrics.render().decode()
    assert 'headwater_http_requests_total{route="/jobs/{id}",status="200"} 2' in text
    assert 'headwater_http_requests_total{route="other",status="404"} 1' in text
