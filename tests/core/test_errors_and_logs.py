"""What clients see of function errors and of print/logging output (dev mode)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

import httpx

from tests.support.calls import error_text
from tests.support.servers import ServerProcess
from tests.support.ws import SyncClient


async def call_raw(client: httpx.AsyncClient, kind: str, path: str, args: object) -> dict:
    """POST a call and return the JSON body (HTTP 200 required)."""
    r = await client.post(f"/api/{kind}", json={"path": path, "args": args})
    assert r.status_code == 200, r.text
    body: dict = r.json()
    return body


async def test_print_and_logging_become_log_lines(kitchen: httpx.AsyncClient) -> None:
    body = await call_raw(kitchen, "query", "core_tx:noisy", {"tag": uuid.uuid4().hex})
    assert body["status"] == "success"
    assert body["logLines"] == [
        "[LOG] 'hello world'",
        "[INFO] info line",
        "[WARN] careful",
        "[ERROR] bad",
        "[LOG] \"{'a': 1}\"",
    ]


async def test_an_action_returns_its_own_and_its_queries_log_lines(
    kitchen: httpx.AsyncClient,
) -> None:
    body = await call_raw(kitchen, "action", "core_tx:noisy_action", {"tag": uuid.uuid4().hex})
    assert body["value"] == "done"
    assert body["logLines"][0] == "[LOG] 'from action'"
    assert body["logLines"][1:3] == ["[LOG] 'hello world'", "[INFO] info line"]
    assert len(body["logLines"]) == 6
    assert all(re.match(r"^\[.*?\] ", line) for line in body["logLines"])


async def test_an_uncaught_exception_is_a_server_error_with_a_request_id(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    body = await call_raw(kitchen, "query", "core_tx:crash", {})
    assert body["status"] == "error"
    assert "errorData" not in body
    match = re.match(r"^\[Request ID: ([0-9a-f]+)\] Server Error", body["errorMessage"])
    assert match, body["errorMessage"]
    request_id = match.group(1)
    # The full traceback goes to the server log under the same request id.
    log = kitchen_server.log()
    assert f"[request {request_id}]" in log
    assert "KeyError: 'secret detail'" in log


async def test_each_failing_call_gets_its_own_request_id_even_when_a_socket_holds_the_failure(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    # A subscription keeps the failed result live in the hub (its sockets get QueryFailed)...
    c = await SyncClient.open(kitchen_server.url)
    qid = await c.add("core_tx:crash")
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    socket_id = _request_id(c.results[qid]["errorMessage"])
    # ...but HTTP calls are not answered from it: each is its own request, logged as such.
    ids = [
        _request_id((await call_raw(kitchen, "query", "core_tx:crash", {}))["errorMessage"])
        for _ in range(2)
    ]
    await c.close()
    assert len({socket_id, *ids}) == 3, (socket_id, ids)
    log = kitchen_server.log()
    for request_id in ids:
        assert f"[request {request_id}]" in log


def _request_id(message: str) -> str:
    match = re.match(r"^\[Request ID: ([0-9a-f]+)\] Server Error", message)
    assert match, message
    return match.group(1)


async def test_convex_error_data_reaches_the_client_with_http_200(
    kitchen: httpx.AsyncClient,
) -> None:
    body = await call_raw(kitchen, "mutation", "core_tx:savepoint_then_fail", {})
    assert set(body) == {"status", "errorMessage", "errorData", "logLines"}
    assert (body["status"], body["errorData"], body["logLines"]) == ("error", "outer failed", [])
    assert re.fullmatch(
        r"Uncaught ConvexError: outer failed\n    at savepoint_then_fail \(kitchen/core_tx\.py:\d+:\d+\)",
        error_text(body["errorMessage"]),
    ), body


async def test_argument_validation_errors_name_the_path_and_carry_no_data(
    kitchen: httpx.AsyncClient,
) -> None:
    body = await call_raw(kitchen, "query", "core_db:select", {"table": 5})
    assert (body["status"], body["logLines"], "errorData" in body) == ("error", [], False)
    assert error_text(body["errorMessage"]) == (
        "ArgumentValidationError: Value does not match validator.\n"
        "Path: .table\nValue: 5.0\nValidator: v.string()"
    )
    missing = await call_raw(kitchen, "query", "core_tx:get_thing", {})
    assert error_text(missing["errorMessage"]).startswith(
        "ArgumentValidationError: Object is missing the required field `id`."
    )
    extra = await call_raw(kitchen, "query", "core_tx:good_returns", {"surprise": 1})
    assert error_text(extra["errorMessage"]).startswith(
        "ArgumentValidationError: Object contains extra field `surprise`"
    )
    assert "errorData" not in missing and "errorData" not in extra


async def test_floats_are_written_with_a_decimal_point_and_int64_as_integer_objects(
    kitchen: httpx.AsyncClient,
) -> None:
    value = {"f": 2, "big": {"$integer": "AAEAAAAAAAA="}, "nan": {"$float": "AAAAAAAA+H8="}}
    r = await kitchen.post("/api/query", json={"path": "core_tx:echo", "args": [{"value": value}]})
    assert '"f":2.0' in r.text
    assert r.json()["value"] == {
        "f": 2.0,
        "big": {"$integer": "AAEAAAAAAAA="},
        "nan": {"$float": "AAAAAAAA+H8="},
    }
    kinds = await call_raw(kitchen, "query", "core_tx:describe", {"value": value})
    assert kinds["value"] == {"f": "float", "big": "Int64", "nan": "float"}


async def test_a_live_query_failing_the_same_way_again_sends_no_new_result(
    kitchen: httpx.AsyncClient, kitchen_server: ServerProcess
) -> None:
    # Every run has its own request id in its text; as in Convex, that is no change.
    c = await SyncClient.open(kitchen_server.url)
    qid = await c.add("custom_errors:failing_reader")
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    first = c.results[qid]["errorMessage"]
    seen = len(c.transitions)
    for i in range(3):
        doc = {"event": f"touch-{i}"}
        r = await c.mutation("core_db:insert", {"table": "core_events", "doc": doc})
        assert r["success"], r
    await asyncio.sleep(0.3)
    with contextlib.suppress(TimeoutError):
        await c.recv(timeout=0.3)
    touched = [m for t in c.transitions[seen:] for m in t["modifications"] if m["queryId"] == qid]
    await c.close()
    assert touched == [] and c.results[qid]["errorMessage"] == first
