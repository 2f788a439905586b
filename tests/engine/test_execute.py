"""`execute()`: every entry runs through it, so each is logged, counted and mapped alike."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from app.auth import Principal
from app.compose import build_engine
from app.devlog import CallLog
from app.engine import Engine
from app.engine.registry import load_registry
from app.http.app import create_app
from app.http.site import create_site_app
from app.logconfig import log_call
from app.settings import Settings
from tests.ops.conftest import parse_metrics
from tests.support.apps import write_app
from tests.support.calls import error_text
from tests.support.servers import create_database

FUNCTIONS = {
    "notes.py": """
        from app.server import action, api, mutation, query
        from app.values import ConvexError, v

        @query(args={"n": v.number()})
        async def double(ctx, args):
            print("doubling", args["n"])
            return args["n"] * 2

        @mutation(args={})
        async def refuse(ctx, args):
            raise ConvexError({"code": "NO"})

        @action(args={})
        async def twice(ctx, args):
            return await ctx.run_query(api.notes.double, {"n": 21})
    """,
    "http.py": """
        from starlette.responses import PlainTextResponse
        from app.server import HttpRouter
        from app.values import ConvexError

        http = HttpRouter()

        @http.route(method="GET", path="/hello")
        async def hello(ctx, request):
            print("hello from http")
            return PlainTextResponse("hi")

        @http.route(method="GET", path="/boom")
        async def boom(ctx, request):
            raise RuntimeError("kaboom")

        @http.route(method="GET", path="/refuse")
        async def refuse(ctx, request):
            raise ConvexError("not here")
    """,
}


@pytest.fixture
async def engine(
    services: dict[str, str], tmp_path: Path
) -> AsyncIterator[tuple[Engine, io.StringIO]]:
    """A started dev engine of a small app whose call log writes to a buffer."""
    url = await create_database(services["database_url"], "engine_execute")
    folder = write_app(tmp_path / "app", FUNCTIONS)
    settings = Settings(
        database_url=url,
        redis_url=services["redis_url"],
        functions=str(folder),
        data_dir=str(tmp_path / "data"),
    )
    engine = build_engine(settings, load_registry(folder), "dev")
    stream = io.StringIO()
    engine.call_log = CallLog(stream, color=False)
    async with engine:
        yield engine, stream


def _calls(engine: Engine) -> dict[tuple[str, str, str], float]:
    samples = parse_metrics(generate_latest(engine.metrics.registry).decode())
    return {
        (dict(labels)["function"], dict(labels)["kind"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "convect_function_calls_total"
    }


async def test_http_actions_are_counted_and_logged_like_every_other_call(
    engine: tuple[Engine, io.StringIO],
) -> None:
    eng, log = engine
    transport = httpx.ASGITransport(app=create_site_app(eng))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        assert (await client.get("/hello")).text == "hi"
        boom = await client.get("/boom")
    assert boom.status_code == 500 and boom.json()["code"].startswith("[Request ID: ")
    calls = _calls(eng)
    assert calls[("GET /hello", "httpAction", "success")] == 1
    assert calls[("GET /boom", "httpAction", "error")] == 1
    lines = log.getvalue().splitlines()
    hello = next(line for line in lines if "GET /hello" in line)
    assert " H GET /hello " in hello and " ok" in hello and "hello from http" in hello
    failed = next(line for line in lines if "GET /boom" in line)
    assert "error:" in failed and "kaboom" in failed  # dev mode names the cause


async def test_every_entry_reaches_the_metrics_and_the_call_log(
    engine: tuple[Engine, io.StringIO],
) -> None:
    eng, log = engine
    admin = Principal(None, True)
    transport = httpx.ASGITransport(app=create_app(eng))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.post("/api/query", json={"path": "notes:double", "args": {"n": 2}})
        assert r.json()["value"] == 4
        r = await client.post("/api/mutation", json={"path": "notes:refuse", "args": {}})
        assert r.json()["errorData"] == {"code": "NO"}
    outcome = await eng.call("notes:twice", {}, admin, "action")  # and its ctx.run_query
    assert outcome.error is None and outcome.value == 42
    assert "[LOG] 'doubling 21.0'" in outcome.log_lines  # the nested call's lines reach the action
    calls = _calls(eng)
    assert calls[("notes:double", "query", "success")] == 2
    assert calls[("notes:refuse", "mutation", "convex_error")] == 1
    assert calls[("notes:twice", "action", "success")] == 1
    assert sum(" notes:double " in line for line in log.getvalue().splitlines()) == 2


async def test_a_query_answered_from_the_cache_is_counted_and_logged_as_cached(
    engine: tuple[Engine, io.StringIO],
) -> None:
    eng, log = engine

    def lines() -> list[str]:
        return [line for line in log.getvalue().splitlines() if " notes:double " in line]

    transport = httpx.ASGITransport(app=create_app(eng))
    calls = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        # (a result computed while the hub refreshed is not kept: call until one is)
        while calls < 50 and not any("(cached)" in line for line in lines()):
            r = await client.post("/api/query", json={"path": "notes:double", "args": {"n": 7}})
            assert r.json()["value"] == 14
            assert r.json()["logLines"] == ["[LOG] 'doubling 7.0'"]  # the run's, repeated
            calls += 1
            await asyncio.sleep(0.02)
    assert _calls(eng)[("notes:double", "query", "success")] == calls
    assert len(lines()) == calls and "(cached)" not in lines()[0]
    assert lines()[-1].split("  ")[0].endswith("ok (cached)")


async def test_bad_arguments_are_one_failure_on_every_transport(
    engine: tuple[Engine, io.StringIO],
) -> None:
    eng, _ = engine
    outcome = await eng.call("notes:double", {"n": "x"}, Principal(None, False), "query")
    assert outcome.error is not None
    assert error_text(outcome.error.message).startswith("ArgumentValidationError: ")
    assert not outcome.error.transient
    missing = await eng.call("notes:nope", {}, Principal(None, False), "query")
    assert missing.error is not None
    assert error_text(missing.error.message) == "Could not find public function for 'notes:nope'."


async def test_in_prod_the_lines_a_call_printed_reach_the_server_log(
    engine: tuple[Engine, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    eng, _ = engine
    eng.call_log = log_call
    transport = httpx.ASGITransport(app=create_site_app(eng))
    with caplog.at_level(logging.INFO, logger="convect.calls"):
        async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
            assert (await client.get("/hello")).text == "hi"
    records = [r for r in caplog.records if getattr(r, "path", None) == "GET /hello"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert records[0].log_lines == ["[LOG] 'hello from http'"]  # type: ignore[attr-defined]


async def test_a_convex_error_escaping_an_http_action_is_a_logged_server_error(
    engine: tuple[Engine, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    eng, _ = engine
    transport = httpx.ASGITransport(app=create_site_app(eng))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        r = await client.get("/refuse")
    assert r.status_code == 500
    assert r.json()["code"].endswith("Server Error: Uncaught ConvexError: not here")  # dev
    assert r.json()["data"] == "not here"
    assert any("GET /refuse" in rec.getMessage() for rec in caplog.records)
