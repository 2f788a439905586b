"""The official Convex HTTP clients (PyPI `convex`, npm `convex`) against Convect."""

from __future__ import annotations

import re
import uuid

import pytest
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexExecutionError, ConvexHttpClient

from tests.support.calls import error_text
from tests.support.npm import run_script
from tests.support.servers import ServerProcess


def test_python_client_runs_queries_mutations_and_actions(demo_server: ServerProcess) -> None:
    client = ConvexHttpClient(demo_server.url)
    author = f"py-{uuid.uuid4().hex[:8]}"
    msg_id = client.mutation("messages:create", {"author": author, "body": "hello"})
    assert isinstance(msg_id, str)
    assert client.mutation("messages:like", {"id": msg_id}) is None
    client.mutation("messages:like", {"id": msg_id})
    doc = client.query("messages:get", {"id": msg_id})
    assert doc["likes"] == 2.0 and isinstance(doc["likes"], float)
    assert isinstance(doc["_creationTime"], float)
    assert [d["body"] for d in client.query("messages:get_by_author", {"author": author})] == [
        "hello"
    ]
    echoed = client.action("actions:echo", {"text": "hi from python"})
    assert echoed["text"] == "hi from python"
    assert isinstance(echoed["logged"], float) and echoed["logged"] >= 1.0


def test_python_client_gets_convex_error_data(demo_server: ServerProcess) -> None:
    client = ConvexHttpClient(demo_server.url)
    a = client.mutation("accounts:open", {"owner": "a", "balance": 100})
    b = client.mutation("accounts:open", {"owner": "b", "balance": 0})
    client.mutation("accounts:transfer", {"fromId": a, "toId": b, "amount": 25})
    with pytest.raises(ConvexError) as info:
        client.mutation("accounts:transfer", {"fromId": a, "toId": b, "amount": 1000})
    assert info.value.data == {"code": "INSUFFICIENT_FUNDS", "balance": 75.0}
    assert str(info.value) == "Convex error"
    with pytest.raises(ConvexError) as string_error:
        client.mutation("messages:like", {"id": _deleted_message(client)})
    assert string_error.value.data == "Not found"
    assert str(string_error.value) == "Not found"
    assert client.query("accounts:get", {"id": a})["balance"] == 75.0


def _deleted_message(client: ConvexHttpClient) -> str:
    msg_id: str = client.mutation("messages:create", {"author": "x", "body": "gone"})
    client.mutation("messages:remove", {"id": msg_id})
    return msg_id


def test_python_client_sees_validation_and_lookup_errors_as_execution_errors(
    demo_server: ServerProcess,
) -> None:
    client = ConvexHttpClient(demo_server.url)
    with pytest.raises(ConvexExecutionError) as info:
        client.query("messages:get", {"id": 5})
    assert error_text(str(info.value)).startswith(
        "ArgumentValidationError: Value does not match validator."
    )
    assert 'v.id("messages")' in str(info.value)
    with pytest.raises(ConvexExecutionError) as info:
        client.action("actions:echo", {"text": 1})
    assert "ArgumentValidationError" in str(info.value)
    with pytest.raises(ConvexExecutionError) as info:
        client.mutation("logs:record", {"event": "x"})
    assert error_text(str(info.value)) == "Could not find public function for 'logs:record'."


def test_python_client_round_trips_int64_floats_and_bytes(kitchen_server: ServerProcess) -> None:
    client = ConvexHttpClient(kitchen_server.url)
    value = {
        "i": ConvexInt64(2**62 + 7),
        "neg": ConvexInt64(-5),
        "f": 1.5,
        "w": 3,
        "b": b"\x01\x02",
    }
    echoed = client.query("core_tx:echo", {"value": value})
    assert isinstance(echoed["i"], ConvexInt64) and echoed["i"].value == 2**62 + 7
    assert isinstance(echoed["neg"], ConvexInt64) and echoed["neg"].value == -5
    assert echoed["f"] == 1.5
    assert echoed["w"] == 3.0 and isinstance(echoed["w"], float)
    assert echoed["b"] == b"\x01\x02"
    kinds = client.query("core_tx:describe", {"value": value})
    assert kinds == {"i": "Int64", "neg": "Int64", "f": "float", "w": "float", "b": "bytes"}
    nan = client.query("core_tx:echo", {"value": float("nan")})
    assert nan != nan
    assert client.query("core_tx:echo", {"value": float("-inf")}) == float("-inf")


def test_python_client_server_error_carries_a_request_id(kitchen_server: ServerProcess) -> None:
    client = ConvexHttpClient(kitchen_server.url)
    with pytest.raises(ConvexExecutionError) as info:
        client.query("core_tx:crash", {})
    assert str(info.value).startswith("[Request ID: ")
    assert "Server Error" in str(info.value)


def test_npm_client_runs_against_convect(
    demo_server: ServerProcess, kitchen_server: ServerProcess
) -> None:
    out = run_script("core_http_client.mjs", demo_server.url, kitchen_server.url)
    assert out["idType"] == "string"
    assert out["doc"] == {"body": "hello", "likes": 2, "likesType": "number", "id": True}
    assert out["byAuthor"] == ["hello"]
    assert out["echo"]["text"] == "hi from npm" and out["echo"]["logged"] >= 1
    assert out["transferOk"] is None
    insufficient = out["insufficient"]
    insufficient["message"] = re.sub(
        r"accounts\.py:\d+:\d+",
        "accounts.py:<line>",
        re.sub(r"Request ID: [0-9a-f]{16}", "Request ID: <id>", insufficient["message"]),
    )
    assert insufficient == {
        "threw": True,
        "isConvexError": True,
        "isError": True,
        "message": '[Request ID: <id>] Server Error\nUncaught ConvexError: {"code":"INSUFFICIENT_FUNDS",'
        '"balance":60}\n    at transfer (functions/accounts.py:<line>)\n',
        "hasData": True,
        "data": {"code": "INSUFFICIENT_FUNDS", "balance": 60},
    }
    for key in ("badArgs", "badActionArgs"):
        assert out[key]["threw"] and out[key]["isError"], out[key]
        assert not out[key]["isConvexError"]
        assert not out[key]["hasData"]
        assert error_text(out[key]["message"]).startswith("ArgumentValidationError")
    assert error_text(out["unknown"]["message"]) == (
        "Could not find public function for 'messages:nope'."
    )
    assert error_text(out["internal"]["message"]) == (
        "Could not find public function for 'logs:record'."
    )
    assert not out["unknown"]["isConvexError"] and not out["internal"]["isConvexError"]
    assert out["balances"] == [60, 40]
    assert out["int64"] == {
        "type": "bigint",
        "equal": True,
        "neg": True,
        "f": 1.5,
        "whole": 3,
        "bytes": [1, 2, 3],
    }
    assert out["kinds"] == {"i": "Int64", "whole": "float"}
    assert out["serverError"]["message"].startswith("[Request ID: ")
    assert not out["serverError"]["isConvexError"]
    # Every log line parsed as "[LEVEL] text" (the client reports unparsable ones as errors).
    assert not [line for level, line in out["logged"] if level == "error"], out["logged"]
    lines = [line for _, line in out["logged"]]
    assert any("[LOG]" in line and "echoed hi from npm" in line for line in lines), lines
    assert any("(core_tx:noisy)] [INFO]" in line and "info line" in line for line in lines), lines
