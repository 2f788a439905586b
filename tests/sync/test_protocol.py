"""The sync protocol, frame by frame: versions, results, mutations, errors, hostile input."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from app.sync.protocol import decode_ts
from tests.support.calls import error_text, mutation, query
from tests.support.servers import ADMIN_KEY, ServerProcess
from tests.support.ws import SyncClient


async def _open(server: ServerProcess) -> SyncClient:
    return await SyncClient.open(server.url)


async def test_first_transition_starts_at_zero_and_carries_the_query_result(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    await mutation(demo, "messages:create", {"author": "ann", "body": "hi"})
    c = await _open(demo_server)
    qid = await c.add("messages:list")
    t = await c.recv_type("Transition")
    assert t["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
    assert t["endVersion"]["querySet"] == 1
    assert [d["body"] for d in c.value(qid)] == ["hi"]
    assert t["modifications"][0]["logLines"] == []
    await c.close()


async def test_versions_chain_across_adds_removes_and_mutations(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    a = await c.add("messages:get_by_author", {"author": "a"})
    b = await c.add("messages:get_by_author", {"author": "b"})
    await c.wait_query_set()
    assert c.value(a) == [] and c.value(b) == []
    response = await c.mutation("messages:create", {"author": "a", "body": "x"})
    assert response["success"] is True
    assert [d["body"] for d in c.value(a)] == ["x"]
    await c.remove(a)
    t = await c.recv_type("Transition")
    assert {"type": "QueryRemoved", "queryId": a} in t["modifications"]
    assert a not in c.results and b in c.results
    await c.close()


async def test_a_write_that_touches_nothing_subscribed_sends_no_query_update(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    qid = await c.add("messages:get_by_author", {"author": "quiet"})
    await c.wait_query_set()
    before = len([t for t in c.transitions if t["modifications"]])
    response = await c.mutation("messages:create", {"author": "loud", "body": "x"})
    assert response["success"]
    await mutation(demo, "messages:create", {"author": "loud", "body": "y"})
    await asyncio.sleep(0.3)
    with pytest.raises(asyncio.TimeoutError):
        await c.recv(timeout=0.3)
    assert len([t for t in c.transitions if t["modifications"]]) == before
    assert c.value(qid) == []
    await c.close()


async def test_a_write_from_http_reaches_the_subscriber_quickly(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    qid = await c.add("messages:get_by_author", {"author": "z"})
    await c.wait_query_set()
    started = asyncio.get_running_loop().time()
    await mutation(demo, "messages:create", {"author": "z", "body": "pushed"})
    while not c.value(qid):
        await c.recv(timeout=1)
    assert asyncio.get_running_loop().time() - started < 1
    assert [d["body"] for d in c.value(qid)] == ["pushed"]
    await c.close()


async def test_mutation_failures_carry_error_data_only_for_convex_errors(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    a = await mutation(demo, "accounts:open", {"owner": "a", "balance": 1})
    c = await _open(demo_server)
    r = await c.mutation("accounts:transfer", {"fromId": a, "toId": a, "amount": 5})
    assert r["success"] is False
    assert r["errorData"] == {"code": "INSUFFICIENT_FUNDS", "balance": 1.0}
    r = await c.mutation("accounts:transfer", {"fromId": "nope", "toId": a, "amount": 5})
    assert r["success"] is False and "errorData" not in r
    assert "ArgumentValidationError" in r["result"]
    r = await c.mutation("logs:record", {"event": "internal"})
    assert r["success"] is False and "Could not find public function" in r["result"]
    assert await query(demo, "logs:list") == []
    await c.close()


async def test_query_failures_are_reported_as_query_failed(demo_server: ServerProcess) -> None:
    c = await _open(demo_server)
    qid = await c.add("messages:get", {"id": "not-an-id"})
    missing = await c.add("nope:nothing")
    internal = await c.add("logs:count")
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    assert "errorData" not in c.results[qid]
    assert "Could not find public function" in c.results[missing]["errorMessage"]
    assert "Could not find public function" in c.results[internal]["errorMessage"]
    await c.close()


async def test_a_function_of_another_kind_is_named_as_such_on_the_socket(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    r = await c.mutation("messages:list", {})
    assert r["success"] is False
    assert error_text(r["result"]) == (
        "Trying to execute messages:list as Mutation, but it is defined as Query."
    )
    await c.send({"type": "Action", "requestId": 99, "udfPath": "messages:create", "args": [{}]})
    r = await c.recv_type("ActionResponse")
    assert r["success"] is False
    assert error_text(r["result"]) == (
        "Trying to execute messages:create as Action, but it is defined as Mutation."
    )
    wrong = await c.add("messages:create", {"author": "a", "body": "b"})
    internal = await c.add("logs:record", {"event": "x"})
    await c.wait_query_set()
    assert error_text(c.results[wrong]["errorMessage"]) == (
        "Trying to execute messages:create as Query, but it is defined as Mutation."
    )
    # An internal function is not revealed to a non-admin socket, whatever its kind.
    assert error_text(c.results[internal]["errorMessage"]) == (
        "Could not find public function for 'logs:record'."
    )
    await c.close()
    assert await query(demo, "messages:list") == []
    assert await query(demo, "logs:list") == []


async def test_paths_are_canonicalised_like_the_clients_expect(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    qid = await c.add("messages.js:list")
    await c.wait_query_set()
    assert c.value(qid) == []
    await c.close()


async def test_actions_answer_with_action_response(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    await c.send(
        {"type": "Action", "requestId": 0, "udfPath": "actions:echo", "args": [{"text": "t"}]}
    )
    r = await c.recv_type("ActionResponse")
    assert r == {
        "type": "ActionResponse",
        "requestId": 0,
        "success": True,
        "result": {"text": "t", "logged": 1.0},
        "logLines": ["[LOG] 'echoed t'"],
    }
    await c.close()


async def test_resent_mutation_with_the_same_session_and_request_id_applies_once(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c1 = await _open(demo_server)
    r1 = await c1.mutation("messages:create", {"author": "dup", "body": "once"}, request_id=7)
    await c1.close()
    c2 = await SyncClient.open(demo_server.url, connect_msg=False)
    c2.session_id = c1.session_id
    await c2.connect(1, "closed with code 1006")
    r2 = await c2.mutation("messages:create", {"author": "dup", "body": "once"}, request_id=7)
    assert r2["success"] and r2["result"] == r1["result"] and r2["ts"] == r1["ts"]
    assert len(await query(demo, "messages:get_by_author", {"author": "dup"})) == 1
    await c2.close()


async def test_authenticate_with_a_bad_token_gets_auth_error_and_no_identity(
    demo_server: ServerProcess,
) -> None:
    c = await _open(demo_server)
    await c.send(
        {"type": "Authenticate", "tokenType": "User", "value": "garbage", "baseVersion": 0}
    )
    msg = await c.recv_type("AuthError")
    assert msg["baseVersion"] == 0 and msg["authUpdateAttempted"] is True
    with pytest.raises(ConnectionClosed):
        await c.recv(timeout=5)


async def test_authenticate_none_and_admin_bump_the_identity_version(
    demo_server: ServerProcess,
) -> None:
    c = await _open(demo_server)
    await c.send({"type": "Authenticate", "tokenType": "None", "baseVersion": 0})
    t = await c.recv_type("Transition")
    assert t["endVersion"]["identity"] == 1
    await c.send(
        {"type": "Authenticate", "tokenType": "Admin", "value": ADMIN_KEY, "baseVersion": 1}
    )
    t = await c.recv_type("Transition")
    assert t["endVersion"]["identity"] == 2
    # As admin, internal queries are reachable.
    qid = await c.add("logs:count")
    await c.wait_query_set()
    assert c.value(qid) == 0.0
    await c.close()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        orjson.dumps({"type": "Bogus"}).decode(),
        orjson.dumps(
            {"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []}
        ).decode(),
        orjson.dumps(
            {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 3, "modifications": []}
        ).decode(),
        orjson.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [{"type": "Remove", "queryId": 9}],
            }
        ).decode(),
        orjson.dumps(
            {"type": "Mutation", "requestId": -1, "udfPath": "messages:create", "args": [{}]}
        ).decode(),
        orjson.dumps({"type": "Mutation", "requestId": 0, "udfPath": 5, "args": [{}]}).decode(),
        # Beyond JavaScript's safe integers (and PostgreSQL's bigint): a protocol error,
        # not a Server Error from the dedupe lookup.
        orjson.dumps(
            {"type": "Mutation", "requestId": 2**63, "udfPath": "messages:create", "args": [{}]}
        ).decode(),
        orjson.dumps({"type": "Authenticate", "tokenType": "Wizard", "baseVersion": 0}).decode(),
        orjson.dumps({"type": "Connect", "sessionId": 5}).decode(),
    ],
)
async def test_malformed_messages_get_a_fatal_error_and_a_close(
    demo: httpx.AsyncClient, demo_server: ServerProcess, frame: str
) -> None:
    c = await _open(demo_server)
    await c.conn.send(frame)
    msg = await c.recv_type("FatalError")
    assert msg["error"]
    with pytest.raises(ConnectionClosed):
        await c.recv(timeout=5)
    assert (await demo.get("/healthz")).status_code == 200
    assert await query(demo, "messages:list") == []


async def test_hostile_values_in_args_fail_the_call_and_write_nothing(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    for args in ([{"$bad": 1}], [{"author": {"$integer": "xx"}, "body": "b"}], [1, 2], "str"):
        await c.send(
            {
                "type": "Mutation",
                "requestId": c.next_request,
                "udfPath": "messages:create",
                "args": args,
            }
        )
        c.next_request += 1
        r = await c.recv_type("MutationResponse")
        assert r["success"] is False
    qid = await c.add("messages:list", {"$x": 1})
    await c.wait_query_set()
    assert c.results[qid]["type"] == "QueryFailed"
    assert await query(demo, "messages:list") == []
    await c.close()


async def test_a_huge_frame_closes_that_socket_only(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    with pytest.raises(ConnectionClosed):
        await c.conn.send("x" * (20 * 1024 * 1024))
        await c.recv(timeout=10)
    c2 = await _open(demo_server)
    qid = await c2.add("messages:list")
    await c2.wait_query_set()
    assert c2.value(qid) == []
    await c2.close()


async def test_timestamps_never_go_backwards_and_match_mutation_ts(
    demo: httpx.AsyncClient, demo_server: ServerProcess
) -> None:
    c = await _open(demo_server)
    await c.add("messages:list")
    await c.wait_query_set()
    seen = []
    for i in range(5):
        r = await c.mutation("messages:create", {"author": "t", "body": str(i)})
        seen.append(decode_ts(r["ts"]))
    assert seen == sorted(seen) and len(set(seen)) == 5
    r = await demo.post("/api/query_ts")
    assert decode_ts(r.json()["ts"]) >= seen[-1]
    await c.close()
