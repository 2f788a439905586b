"""Environment variables: the admin API, `_system/cli/queryEnvironmentVariables`,
`convect env`, `os.environ` in functions, and the caches a change must clear."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.admin.conftest import STARTUP_GREETING
from tests.support.calls import call
from tests.support.servers import ADMIN_KEY, ServerProcess, run_cli
from tests.support.ws import SyncClient

ADMIN = {"Authorization": f"Convex {ADMIN_KEY}"}
UPDATE = "/api/update_environment_variables"


@pytest.fixture
async def client(admin_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin app; every stored variable is removed afterwards."""
    async with httpx.AsyncClient(base_url=admin_server.url, timeout=30) as c:
        yield c
        stored = await listed(c)
        if stored:
            changes = [{"name": e["name"], "value": None} for e in stored]
            r = await c.post(UPDATE, json={"changes": changes}, headers=ADMIN)
            assert r.status_code == 200, r.text


async def listed(c: httpx.AsyncClient) -> Any:
    return await call(c, "query", "_system/cli/queryEnvironmentVariables", {}, ADMIN)


async def update(c: httpx.AsyncClient, changes: list[dict[str, Any]]) -> httpx.Response:
    return await c.post(UPDATE, json={"changes": changes}, headers=ADMIN)


async def test_updates_need_the_admin_key(client: httpx.AsyncClient) -> None:
    body = {"changes": [{"name": "A", "value": "1"}]}
    assert (await client.post(UPDATE, json=body)).status_code == 401
    wrong = {"Authorization": "Convex not-the-key"}
    assert (await client.post(UPDATE, json=body, headers=wrong)).status_code == 403
    assert await listed(client) == []
    # the system queries are admin-only too: no such public function
    r = await client.post(
        "/api/query", json={"path": "_system/cli/queryEnvironmentVariables", "args": {}}
    )
    assert r.json()["status"] == "error"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([{"name": "GOOD", "value": "1"}, {"name": "1BAD", "value": "x"}], "start with a letter"),
        ([{"name": "CONVECT_MODE", "value": "prod"}], "Convect reads at start-up"),
        ([{"name": "DATABASE_URL", "value": "x"}], "Convect reads at start-up"),
        ([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "twice"),
        ([{"name": "BIG", "value": "x" * 8193}], "larger than"),
        ([{"name": "N", "value": 5}], "must be a string"),
        ([{"name": "X" * 41, "value": "1"}], "longer than 40"),
    ],
)
async def test_bad_changes_are_refused_whole(
    client: httpx.AsyncClient, changes: list[dict[str, Any]], message: str
) -> None:
    r = await update(client, changes)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert await listed(client) == []


async def test_more_than_a_hundred_variables_are_refused(client: httpx.AsyncClient) -> None:
    assert (await update(client, [{"name": f"V{i}", "value": "x"} for i in range(100)])).is_success
    r = await update(client, [{"name": "ONE_MORE", "value": "x"}])
    assert r.status_code == 400 and "at most 100" in r.json()["message"]
    assert len(await listed(client)) == 100


async def test_functions_see_changes_and_the_startup_value_returns(
    client: httpx.AsyncClient,
) -> None:
    read = ("query", "env:read", {"name": "GREETING"})
    assert await call(client, *read) == STARTUP_GREETING  # now cached by the hub
    assert await call(client, *read) == STARTUP_GREETING
    assert (await update(client, [{"name": "GREETING", "value": "stored"}])).status_code == 200
    assert await call(client, *read) == "stored"  # the cached result was dropped
    assert await call(client, "action", "env:read_in_action", {"name": "GREETING"}) == "stored"
    assert await listed(client) == [{"name": "GREETING", "value": "stored"}]
    get = "_system/cli/queryEnvironmentVariables:get"
    assert await call(client, "query", get, {"name": "GREETING"}, ADMIN) == {
        "name": "GREETING",
        "value": "stored",
    }
    # only deployment variables are shown, never the rest of the process environment
    assert await call(client, "query", get, {"name": "PATH"}, ADMIN) is None
    assert (await update(client, [{"name": "GREETING", "value": None}])).status_code == 200
    assert await call(client, *read) == STARTUP_GREETING
    assert await listed(client) == []


async def test_a_live_query_is_rerun_on_a_change(
    client: httpx.AsyncClient, admin_server: ServerProcess
) -> None:
    sync = await SyncClient.open(admin_server.url)
    try:
        qid = await sync.add("env:read", {"name": "COLOR"})
        await sync.wait_query_set()
        assert sync.value(qid) is None
        assert (await update(client, [{"name": "COLOR", "value": "blue"}])).status_code == 200
        while sync.value(qid) != "blue":
            await sync.recv_type("Transition")
    finally:
        await sync.close()


async def test_convect_env_commands_reach_a_running_server(
    client: httpx.AsyncClient, admin_server: ServerProcess
) -> None:
    env = admin_server.env
    done = await asyncio.to_thread(run_cli, env, "env", "set", "ANSWER", "42")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    while await call(client, "query", "env:read", {"name": "ANSWER"}) != "42":
        assert time.monotonic() < deadline, "the server did not see the change within 5 s"
        await asyncio.sleep(0.05)
    listing = await asyncio.to_thread(run_cli, env, "env", "list")
    assert listing.stdout.splitlines() == ["ANSWER=42"]
    got = await asyncio.to_thread(run_cli, env, "env", "get", "ANSWER")
    assert got.stdout.strip() == "42"
    bad = await asyncio.to_thread(run_cli, env, "env", "set", "9LIVES", "x")
    assert bad.returncode == 1 and "start with a letter" in bad.stderr
    removed = await asyncio.to_thread(run_cli, env, "env", "remove", "ANSWER")
    assert removed.returncode == 0
    missing = await asyncio.to_thread(run_cli, env, "env", "get", "ANSWER")
    assert missing.returncode == 1 and "not set" in missing.stderr
