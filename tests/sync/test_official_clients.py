"""The official clients over the sync protocol: npm ConvexClient and PyPI convex.ConvexClient."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.deadline import deadline
from tests.support.npm import run_script
from tests.support.servers import ServerProcess


def test_npm_convex_client_subscribes_mutates_and_sees_other_clients(
    demo_server: ServerProcess, demo: httpx.AsyncClient
) -> None:
    out = run_script("sync_live.mjs", env={"CONVECT_URL": demo_server.url})
    assert out["updates"][0] == []
    assert out["sawOwnWriteOnResolve"] is True
    assert out["updates"][-1] == ["from socket", "from http"]
    assert out["httpLatencyMs"] < 1000
    assert out["errors"]["convex"] == {
        "name": "ConvexError",
        "data": {"code": "INSUFFICIENT_FUNDS", "balance": 1},
    }
    assert out["errors"]["validation"]["name"] == "Error"
    assert out["errors"]["validation"]["hasData"] is False
    assert "ArgumentValidationError" in out["errors"]["validation"]["message"]
    assert out["action"] == {"text": "npm", "logged": 1}
    assert out["oneShot"] == 2
    assert out["unrelated"] == 1 and out["unrelatedAfter"] == 1


def test_pypi_convex_client_subscribes_and_sees_a_write_from_another_client(
    demo_server: ServerProcess, demo: httpx.AsyncClient
) -> None:
    from convex import ConvexClient, ConvexError

    with deadline(30):
        client = ConvexClient(demo_server.url)
        sub = client.subscribe("messages:get_by_author", {"author": "py"})
        assert next(sub) == []
        started = time.monotonic()
        httpx.post(
            f"{demo_server.url}/api/mutation",
            json={"path": "messages:create", "args": {"author": "py", "body": "hello"}},
        )
        value = next(sub)
        while not value:
            value = next(sub)
        assert time.monotonic() - started < 1.0
        assert [d["body"] for d in value] == ["hello"]
        assert isinstance(value[0]["_creationTime"], float)

        doc_id = client.mutation("messages:create", {"author": "py", "body": "second"})
        assert isinstance(doc_id, str)
        assert [d["body"] for d in client.query("messages:get_by_author", {"author": "py"})] == [
            "hello",
            "second",
        ]

        account = client.mutation("accounts:open", {"owner": "p", "balance": 3})
        with pytest.raises(ConvexError) as info:
            client.mutation("accounts:transfer", {"fromId": account, "toId": account, "amount": 10})
        assert info.value.data == {"code": "INSUFFICIENT_FUNDS", "balance": 3.0}

        assert client.action("actions:echo", {"text": "py"}) == {"text": "py", "logged": 1.0}
        sub.unsubscribe()
