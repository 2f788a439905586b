"""Prod mode: no log lines and no error detail reach clients; ConvexError data still does."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.apps import write_app
from tests.support.calls import error_text
from tests.support.servers import (
    ServerProcess,
    served_app,
)

APP = """
from app.server import query
from app.values import ConvexError, v


@query(args={})
async def chatty(ctx, args):
    print("not for clients")
    return "ok"


@query(args={})
async def leaky(ctx, args):
    raise RuntimeError("database password is hunter2")


@query(args={"n": v.number()})
async def refuse(ctx, args):
    raise ConvexError({"code": "NOPE", "n": args["n"]})
"""


@pytest.fixture(scope="module")
def prod_server(
    services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`convect serve` in prod mode."""
    root = tmp_path_factory.mktemp("prod")
    folder = write_app(root / "functions", {"things.py": APP})
    with served_app(services, "core_prod", folder, root / "data", CONVECT_MODE="prod") as server:
        yield server


async def post(server: ServerProcess, path: str, args: dict[str, object]) -> dict[str, object]:
    """Call a query; return the JSON body (HTTP 200 expected)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        r = await client.post("/api/query", json={"path": path, "args": [args]})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_prod_mode_sends_no_log_lines(prod_server: ServerProcess) -> None:
    assert await post(prod_server, "things:chatty", {}) == {
        "status": "success",
        "value": "ok",
        "logLines": [],
    }


async def test_prod_mode_hides_error_detail_but_logs_it(prod_server: ServerProcess) -> None:
    body = await post(prod_server, "things:leaky", {})
    assert set(body) == {"status", "errorMessage", "logLines"}
    message = str(body["errorMessage"])
    match = re.fullmatch(r"\[Request ID: ([0-9a-f]+)\] Server Error", message)
    assert match, message
    assert "hunter2" not in message
    log = prod_server.log()
    assert f"[request {match.group(1)}]" in log and "hunter2" in log


async def test_prod_mode_still_delivers_convex_error_data(prod_server: ServerProcess) -> None:
    body = await post(prod_server, "things:refuse", {"n": 3})
    assert body["errorData"] == {"code": "NOPE", "n": 3.0}
    validation = await post(prod_server, "things:refuse", {"n": "x"})
    assert error_text(str(validation["errorMessage"])).startswith("ArgumentValidationError")
