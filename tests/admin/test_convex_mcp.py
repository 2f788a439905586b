"""The npm `convex` package's MCP server (`npx convex mcp start`), which AI coding tools use
to inspect a deployment, against Convect: status, tables, data, functionSpec, run, logs, env.

The MCP server (convex 1.48) answers a tool call only for a user logged in to Convex's
cloud: it asks `{CONVEX_PROVISION_HOST}/api/authorize` about the login token first,
even for a self-hosted deployment. A Convex user has that login; offline, these tests
stand in for Convex's cloud with `LoginStandIn` (two answers), and everything the tools
then do goes to Convect.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.calls import call
from tests.support.convex_cli import CONVEX, cli_env, project
from tests.support.servers import ServerProcess, truncate_all

pytestmark = pytest.mark.skipif(not CONVEX.exists(), reason="needs `make setup` (npm deps)")


class _LoginHandler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # /api/authorize: the login token is good
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:  # /api/check_opt_ins: nothing to accept
        body = b'{"optInsToAccept": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def login_stand_in() -> Iterator[str]:
    """A stand-in for Convex's cloud login check (what a logged-in user has)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LoginHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Mcp:
    """A JSON-RPC client of the MCP server over its stdio (one JSON message per line)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request; return its result (AssertionError on a JSON-RPC error)."""
        self.next_id += 1
        await self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
            assert line, "the MCP server closed its output"
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    async def notify(self, method: str) -> None:
        """Send a notification."""
        await self._send({"jsonrpc": "2.0", "method": method})

    async def tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; return its structured result."""
        result = await self.request("tools/call", {"name": name, "arguments": arguments})
        assert not result.get("isError"), result
        if "structuredContent" in result:
            return result["structuredContent"]
        return json.loads(result["content"][0]["text"])

    async def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        await self.proc.stdin.drain()


@pytest.fixture
async def mcp(
    admin_server: ServerProcess, tmp_path: Path, login_stand_in: str
) -> AsyncIterator[Mcp]:
    """`convex mcp start` for a project pointed at the admin app, initialized."""
    await truncate_all(admin_server.env["DATABASE_URL"], admin_server.url)
    folder = project(tmp_path / "project")
    proc = await asyncio.create_subprocess_exec(
        str(CONVEX), "mcp", "start", "--project-dir", str(folder),
        cwd=folder, env={**cli_env(admin_server.url, tmp_path),
                         "CONVEX_PROVISION_HOST": login_stand_in,
                         "CONVEX_OVERRIDE_ACCESS_TOKEN": "a-convex-login"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = Mcp(proc)
    try:
        await client.request(
            "initialize",
            {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "convect-tests", "version": "1"},
            },
        )
        await client.notify("notifications/initialized")
        yield client
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_the_mcp_tools_inspect_and_use_the_deployment(
    mcp: Mcp, admin_server: ServerProcess, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=admin_server.url) as client:
        await call(client, "mutation", "posts:add", {"name": "ann", "title": "from http"})
    names = {t["name"] for t in (await mcp.request("tools/list", {}))["tools"]}
    assert {"status", "tables", "data", "functionSpec", "run", "logs", "envList"} <= names
    status = await mcp.tool("status", {"projectDir": str(tmp_path / "project")})
    [deployment] = status["availableDeployments"]
    assert deployment["url"] == admin_server.url
    selector = deployment["deploymentSelector"]

    tables = await mcp.tool("tables", {"deploymentSelector": selector})
    assert {"authors", "posts", "people"} <= set(tables["tables"])
    assert tables["tables"]["posts"]["schema"]["tableName"] == "posts"
    page = await mcp.tool(
        "data", {"deploymentSelector": selector, "tableName": "posts", "order": "desc"}
    )
    assert [p["title"] for p in page["page"]] == ["from http"] and page["isDone"]
    spec = await mcp.tool("functionSpec", {"deploymentSelector": selector})
    assert "posts.js:add" in json.dumps(spec)

    ran = await mcp.tool(
        "run",
        {
            "deploymentSelector": selector,
            "functionName": "posts:add",
            "args": json.dumps({"name": "bob", "title": "from mcp"}),
        },
    )
    assert "adding from mcp" in json.dumps(ran)
    logs = await mcp.tool("logs", {"deploymentSelector": selector})
    assert "posts:add" in logs["entries"]

    await mcp.tool("envSet", {"deploymentSelector": selector, "name": "TOKEN", "value": "t0k"})
    listed = await mcp.tool("envList", {"deploymentSelector": selector})
    assert [v["name"] for v in listed["variables"]] == ["TOKEN"]  # names only
    got = await mcp.tool("envGet", {"deploymentSelector": selector, "name": "TOKEN"})
    assert got["value"] == "t0k"
    await mcp.tool("envRemove", {"deploymentSelector": selector, "name": "TOKEN"})
    assert (await mcp.tool("envList", {"deploymentSelector": selector}))["variables"] == []
