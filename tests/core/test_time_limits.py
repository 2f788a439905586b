"""Time limits: a call past `function_timeout` / `action_timeout` fails with Convex's
"Function execution timed out" instead of hanging, and an action that never returns
does not hold shutdown past its bound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.apps import write_app
from tests.support.npm import run_script
from tests.support.servers import ServerProcess, served_app

FUNCTIONS = {
    "slow.py": """
        import asyncio
        from app.server import action, mutation, query
        from app.values import v

        @query(args={"seconds": v.number()})
        async def wait_query(ctx, args):
            await asyncio.sleep(args["seconds"])
            return "done"

        @mutation(args={"seconds": v.number()})
        async def wait_mutation(ctx, args):
            await ctx.db.insert("marks", {"at": 1})
            await asyncio.sleep(args["seconds"])
            return "done"

        @action(args={"seconds": v.number()})
        async def wait_action(ctx, args):
            await asyncio.sleep(args["seconds"])
            return "done"

        @query(args={})
        async def marks(ctx, args):
            return len(await ctx.db.query("marks").collect())
    """,
}


@pytest.fixture(scope="module")
def limited(
    services: dict[str, str], data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The small app above served with a 1 s limit for queries and mutations, 2 s for actions."""
    folder = write_app(tmp_path_factory.mktemp("slow") / "app", FUNCTIONS)
    with served_app(
        services,
        "time_limits",
        folder,
        data_dir / "time_limits",
        CONVECT_FUNCTION_TIMEOUT="1",
        CONVECT_ACTION_TIMEOUT="2",
        CONVECT_SHUTDOWN_TIMEOUT="2",
    ) as server:
        yield server


def call(server: ServerProcess, kind: str, path: str, args: str) -> dict:
    return run_script("call_once.mjs", server.url, kind, path, args)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("kind", "path", "limit"),
    [("query", "slow:wait_query", 1), ("mutation", "slow:wait_mutation", 1),
     ("action", "slow:wait_action", 2)],
)  # fmt: skip
def test_a_call_past_its_limit_fails_with_convexs_timeout_text(
    limited: ServerProcess, kind: str, path: str, limit: int
) -> None:
    out = call(limited, kind, path, '{"seconds": 3600}')
    assert out["threw"]
    assert f"Function execution timed out (maximum duration: {limit}s)" in out["message"]
    assert limit <= out["seconds"] < limit + 5


def test_a_timed_out_mutation_writes_nothing_and_a_quick_call_succeeds(
    limited: ServerProcess,
) -> None:
    before = call(limited, "query", "slow:marks", "{}")["value"]
    assert call(limited, "mutation", "slow:wait_mutation", '{"seconds": 30}')["threw"]
    assert call(limited, "mutation", "slow:wait_mutation", '{"seconds": 0}')["value"] == "done"
    assert call(limited, "query", "slow:marks", "{}")["value"] == before + 1


def test_an_action_that_never_returns_does_not_hold_shutdown(
    services: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    folder = write_app(tmp_path / "app", FUNCTIONS)
    with (
        served_app(
            services, "time_limits_stop", folder, data_dir / "time_limits_stop",
            CONVECT_SHUTDOWN_TIMEOUT="2",
        ) as server,
        ThreadPoolExecutor(1) as pool,
    ):  # fmt: skip
        pending = pool.submit(call, server, "action", "slow:wait_action", '{"seconds": 3600}')
        time.sleep(1.5)  # the action is running (10 minutes of limit left)
        stopped_at = time.monotonic()
        server.proc.terminate()
        assert server.proc.wait(20) == 0
        assert time.monotonic() - stopped_at < 10
        assert pending.result(30)["threw"]
