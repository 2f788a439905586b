"""POST /api/run/{module}/{name}: Convex's reply shapes, clear 4xx errors, hostile input."""

from __future__ import annotations

import httpx

from app.db.ids import new_id
from app.values import Int64, decode_value, encode_value
from tests.conftest import ADMIN_HEADERS
from tests.support.calls import error_text, query


async def run(client: httpx.AsyncClient, route: str, args: object = None, **kw: object) -> dict:
    body = {} if args is None else {"args": args}
    r = await client.post(f"/api/run/{route}", json=body, **kw)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    reply: dict = r.json()
    return reply


async def test_a_rest_call_answers_like_the_convex_http_api(demo: httpx.AsyncClient) -> None:
    created = await run(demo, "messages/create", {"author": "ann", "body": "hi"})
    assert created["status"] == "success"
    assert isinstance(created["value"], str)
    listed = await run(demo, "messages/list")
    assert listed["status"] == "success"
    assert listed["value"] == await query(demo, "messages:list")
    assert [m["_id"] for m in listed["value"]] == [created["value"]]
    assert listed["logLines"] == []


async def test_an_empty_body_and_either_format_mean_the_same_call(
    demo: httpx.AsyncClient,
) -> None:
    await run(demo, "messages/create", {"author": "ann", "body": "hi"})
    empty = await demo.post("/api/run/messages/list")
    assert empty.status_code == 200
    assert empty.json()["status"] == "success"
    for fmt in ("json", "convex_encoded_json"):
        r = await demo.post("/api/run/messages/list", json={"args": {}, "format": fmt})
        assert r.json()["value"] == empty.json()["value"]


async def test_int64_and_bytes_travel_in_convex_json(kitchen: httpx.AsyncClient) -> None:
    args = {"count": encode_value(Int64(2**40)), "step": {"$integer": "BQAAAAAAAAA="}}
    bumped = await run(kitchen, "rest_types/bump", args)
    assert decode_value(bumped["value"]) == Int64(2**40 + 5)
    reversed_ = await run(kitchen, "rest_types/reverse_bytes", {"data": {"$bytes": "AQID"}})
    assert reversed_["value"] == {"size": 3.0, "data": {"$bytes": "AwIB"}}


async def test_echo_returns_every_kind_of_value_unchanged(kitchen: httpx.AsyncClient) -> None:
    args = encode_value(
        {
            "text": "t",
            "number": float("-inf"),
            "big": Int64(-1),
            "flag": False,
            "nothing": None,
            "blob": b"\x00",
            "anything": {"deep": [1.0, {"x": None}]},
            "ref": "0" * 36,
            "mode": 3.0,
            "tags": ["a"],
            "scores": {"k": 0.5},
            "point": {"x": 1.0},
        }
    )
    reply = await run(kitchen, "rest_types/echo", args)
    assert reply["status"] == "error"  # "0"*36 is no rest_things id
    assert error_text(reply["errorMessage"]).startswith("ArgumentValidationError: ")
    assert "Path: .ref" in reply["errorMessage"]
    args["ref"] = new_id("rest_things")
    reply = await run(kitchen, "rest_types/echo", args)
    assert reply == {"status": "success", "value": args, "logLines": []}


async def test_bad_arguments_are_an_argument_validation_error_and_write_nothing(
    demo: httpx.AsyncClient,
) -> None:
    reply = await run(demo, "messages/create", {"author": "ann", "body": 5})
    assert reply["status"] == "error"
    assert error_text(reply["errorMessage"]).startswith("ArgumentValidationError: ")
    assert "Path: .body" in reply["errorMessage"]
    assert "errorData" not in reply
    reply = await run(demo, "messages/create", {"author": "ann", "body": "x", "extra": 1})
    assert "extra field `extra`" in reply["errorMessage"]
    assert await query(demo, "messages:list") == []


async def test_a_convex_error_carries_its_data(demo: httpx.AsyncClient) -> None:
    a = (await run(demo, "accounts/open", {"owner": "a", "balance": 10}))["value"]
    b = (await run(demo, "accounts/open", {"owner": "b", "balance": 0}))["value"]
    reply = await run(demo, "accounts/transfer", {"fromId": a, "toId": b, "amount": 50})
    assert reply["status"] == "error"
    assert reply["errorData"] == {"code": "INSUFFICIENT_FUNDS", "balance": 10.0}
    assert error_text(reply["errorMessage"]).startswith("Uncaught ConvexError")


async def test_malformed_requests_get_4xx_code_and_message_and_change_nothing(
    demo: httpx.AsyncClient,
) -> None:
    route = "/api/run/messages/create"
    good = {"author": "ann", "body": "x"}
    cases: list[tuple[dict, int, str]] = [
        ({"content": b"{nope"}, 400, "BadJsonBody"),
        ({"json": [good]}, 400, "BadJsonBody"),
        ({"json": "text"}, 400, "BadJsonBody"),
        ({"json": {"args": good, "path": "messages:create"}}, 400, "BadJsonBody"),
        ({"json": {"args": good, "format": "xml"}}, 400, "BadJsonBody"),
        ({"json": {"args": [good]}}, 400, "InvalidArgs"),
        ({"json": {"args": None}}, 400, "InvalidArgs"),
        ({"json": {"args": {**good, "$bad": 1}}}, 400, "InvalidArgs"),
        ({"json": {"args": {"author": {"$integer": "!!"}, "body": "x"}}}, 400, "InvalidArgs"),
        (
            {"content": b'{"args": {}}', "headers": {"content-type": "text/plain"}},
            415,
            "BadContentType",
        ),
        (
            {"content": b'{"args": {"body": "' + b"x" * (9 * 1024 * 1024) + b'"}}'},
            413,
            "ArgumentsTooLarge",
        ),
        ({"json": {"args": good}, "headers": {"authorization": "Bearer nope"}}, 401, ""),
        ({"json": {"args": good}, "headers": {"authorization": "Convex wrong"}}, 401, ""),
        ({"json": {"args": good}, "headers": {"authorization": "Basic abc"}}, 401, ""),
    ]
    for kwargs, status, code in cases:
        r = await demo.post(route, **kwargs)
        assert r.status_code == status, (kwargs.get("json"), r.text)
        body = r.json()
        assert set(body) == {"code", "message"}
        assert body["message"]
        if code:
            assert body["code"] == code
    assert await query(demo, "messages:list") == []


async def test_unknown_paths_are_404_and_other_methods_405(demo: httpx.AsyncClient) -> None:
    for path in (
        "/api/run/messages/nope",
        "/api/run/nope/list",
        "/api/run/messages",
        "/api/run/messages/list/extra",
        "/api/run/messages:list",
    ):
        r = await demo.post(path, json={})
        assert r.status_code == 404, path
        assert r.json()["code"] == "NotFound"
    r = await demo.get("/api/run/messages/list")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["code"] == "MethodNotAllowed"


async def test_the_admin_key_calls_public_functions_too(demo: httpx.AsyncClient) -> None:
    reply = await run(demo, "messages/list", headers=ADMIN_HEADERS)
    assert reply == {"status": "success", "value": [], "logLines": []}
