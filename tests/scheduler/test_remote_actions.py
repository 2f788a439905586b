"""Client-called actions on the arq workers (CONVECT_RUN_ACTIONS=worker), through the
official npm client: the API process only routes them; at most once, bounded waits."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_HEADERS
from tests.scheduler.conftest import Deployment, deploy, kill
from tests.support.apps import write_app
from tests.support.npm import run_script
from tests.support.servers import start_server
from tests.support.tokens import RsaIssuer

ISSUER = RsaIssuer("https://issuer.remote.test", "remote-app")
START_TIMEOUT = 2
ACTION_TIMEOUT = 10

FUNCTIONS = {
    "remote.py": """
        import asyncio
        import os
        import time

        from app.server import action, api, mutation, query
        from app.values import ConvexError, v

        @action(args={})
        async def where(ctx, args):
            print("running in", os.getpid())
            who = await ctx.auth.get_user_identity()
            return {"pid": os.getpid(), "subject": who.subject if who else None}

        @action(args={"label": v.string()})
        async def record(ctx, args):
            await ctx.run_mutation(api.remote.mark, {"label": args["label"]})
            return await ctx.run_query(api.remote.marks, {"label": args["label"]})

        @action(args={"label": v.string(), "seconds": v.number()})
        async def slow(ctx, args):
            start = {"label": args["label"] + ":start", "pid": os.getpid()}
            await ctx.run_mutation(api.remote.mark, start)
            await asyncio.sleep(args["seconds"])
            await ctx.run_mutation(api.remote.mark, {"label": args["label"] + ":end"})
            return "done"

        @action(args={"seconds": v.number()})
        async def spin(ctx, args):
            end = time.monotonic() + args["seconds"]
            while time.monotonic() < end:  # CPU-bound: holds its process's event loop
                pass
            return "spun"

        @action(args={})
        async def refuse(ctx, args):
            raise ConvexError({"code": 7})

        @action(args={})
        async def crash(ctx, args):
            raise RuntimeError("boom")

        @mutation(args={"label": v.string(), "pid": v.optional(v.number())})
        async def mark(ctx, args):
            await ctx.db.insert("marks", args)

        @query(args={"label": v.string()})
        async def pids(ctx, args):
            found = await ctx.db.query("marks").filter(
                lambda q: q.eq(q.field("label"), args["label"])).collect()
            return [m["pid"] for m in found]

        @query(args={"label": v.string()})
        async def marks(ctx, args):
            found = await ctx.db.query("marks").filter(
                lambda q: q.eq(q.field("label"), args["label"])).collect()
            return len(found)

        @query(args={})
        async def ping(ctx, args):
            return "pong"
    """,
}


@pytest.fixture(scope="module")
def remote(
    services: dict[str, str], sched_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The app above, served with actions on the workers, and one worker `w1`."""
    root = tmp_path_factory.mktemp("remote_actions")
    folder = write_app(root / "app", FUNCTIONS)
    provider = {
        "type": "customJwt",
        "issuer": ISSUER.issuer,
        "jwks": ISSUER.jwks,
        "algorithm": "RS256",
        "application_id": ISSUER.audience,
    }
    dep = deploy(
        services,
        sched_redis,
        root,
        "sched_remote_actions",
        folder,
        CONVECT_RUN_ACTIONS="worker",
        CONVECT_ACTION_START_TIMEOUT=str(START_TIMEOUT),
        CONVECT_ACTION_TIMEOUT=str(ACTION_TIMEOUT),
        CONVECT_AUTH_PROVIDERS=json.dumps([provider]),
    )
    try:
        dep.ensure_workers("w1")
        yield dep
    finally:
        dep.stop_workers()
        if dep.server is not None:
            dep.server.stop()


def url(dep: Deployment) -> str:
    assert dep.server is not None
    return dep.server.url


def action(
    dep: Deployment,
    path: str,
    args: dict[str, Any] | None = None,
    token: str = "",
    transport: str = "http",
) -> Any:
    """Call an action through the npm ConvexHttpClient, or ConvexClient over the sync
    socket (`tests/js/action_call.mjs`)."""
    return run_script("action_call.mjs", url(dep), path, json.dumps(args or {}), token, transport)


def call(dep: Deployment, kind: str, path: str, args: dict[str, Any] | None = None) -> Any:
    """A query or mutation through the npm ConvexHttpClient (`tests/js/call_once.mjs`)."""
    return run_script("call_once.mjs", url(dep), kind, path, json.dumps(args or {}))


def marks(dep: Deployment, label: str) -> int:
    out = call(dep, "query", "remote:marks", {"label": label})
    assert not out["threw"], out
    return int(out["value"])


def wait_marks(dep: Deployment, label: str, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while marks(dep, label) < n:
        assert time.monotonic() < deadline, f"{label} did not reach {n}"
        time.sleep(0.1)


def test_an_action_runs_on_a_worker_with_the_callers_identity_and_log_lines(
    remote: Deployment,
) -> None:
    (worker,) = remote.ensure_workers("w1")
    assert remote.server is not None
    out = action(remote, "remote:where", token=ISSUER.token("alice"))
    assert not out["threw"], out
    assert out["value"] == {"pid": worker.pid, "subject": "alice"}
    assert out["value"]["pid"] != remote.server.proc.pid
    assert any(f"running in {worker.pid}" in line for line in out["logs"]), out["logs"]
    over_socket = action(remote, "remote:where", token=ISSUER.token("bob"), transport="ws")
    assert over_socket["value"] == {"pid": worker.pid, "subject": "bob"}, over_socket
    assert any(f"running in {worker.pid}" in line for line in over_socket["logs"])
    # Counted where /metrics is served (the API process), not only on the worker.
    metrics = httpx.get(f"{url(remote)}/metrics", headers=ADMIN_HEADERS, timeout=10).text
    assert re.search(
        r'convect_function_calls_total\{[^}]*function="remote:where"[^}]*\} [2-9]', metrics
    )


def test_an_action_on_a_worker_runs_functions_and_its_errors_reach_the_client(
    remote: Deployment,
) -> None:
    remote.ensure_workers("w1")
    label = f"rec-{time.monotonic_ns()}"
    out = action(remote, "remote:record", {"label": label})
    assert out == {**out, "threw": False, "value": 1}
    assert marks(remote, label) == 1
    refused = action(remote, "remote:refuse")
    assert refused["threw"] and refused["data"] == {"code": 7}
    crashed = action(remote, "remote:crash")
    assert crashed["threw"] and "Server Error" in crashed["message"]
    request_id = crashed["message"].split("[Request ID: ")[1].split("]")[0]
    assert f"[request {request_id}]" in remote.worker_log("w1")  # the caller's request id


def test_the_api_answers_while_a_cpu_heavy_action_holds_a_worker(remote: Deployment) -> None:
    remote.ensure_workers("w1")
    with ThreadPoolExecutor(1) as pool:
        spinning = pool.submit(action, remote, "remote:spin", {"seconds": 4})
        time.sleep(1.5)  # the action is spinning on the worker
        pong = call(remote, "query", "remote:ping")
        assert pong["value"] == "pong" and pong["seconds"] < 1.0, pong
        assert spinning.result(30)["value"] == "spun"


def test_an_action_past_its_time_limit_fails_with_convexs_timeout_text(
    remote: Deployment,
) -> None:
    remote.ensure_workers("w1")
    out = action(remote, "remote:slow", {"label": f"t-{time.monotonic_ns()}", "seconds": 60})
    assert out["threw"]
    assert f"Function execution timed out (maximum duration: {ACTION_TIMEOUT}s)" in out["message"]
    assert ACTION_TIMEOUT <= out["seconds"] < ACTION_TIMEOUT + 4


def test_with_no_worker_an_action_fails_clearly_and_never_runs_later(remote: Deployment) -> None:
    remote.stop_workers()
    label = f"none-{time.monotonic_ns()}"
    out = action(remote, "remote:slow", {"label": label, "seconds": 0})
    assert out["threw"]
    assert "No worker took this action" in out["message"], out
    assert START_TIMEOUT <= out["seconds"] < START_TIMEOUT + 4
    remote.ensure_workers("w1")
    time.sleep(1.5)
    assert marks(remote, f"{label}:start") == 0


def test_a_worker_killed_mid_action_fails_the_call_and_it_is_not_run_again(
    remote: Deployment,
) -> None:
    workers = remote.ensure_workers("w1", "w2")
    label = f"kill-{time.monotonic_ns()}"
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(action, remote, "remote:slow", {"label": label, "seconds": 60})
        wait_marks(remote, f"{label}:start", 1)
        (pid,) = call(remote, "query", "remote:pids", {"label": f"{label}:start"})["value"]
        (running,) = [w for w in workers if w.pid == pid]
        kill(running)
        killed_at = time.monotonic()
        out = pending.result(30)
    assert out["threw"]
    assert "the worker running it stopped" in out["message"], out
    assert time.monotonic() - killed_at < ACTION_TIMEOUT  # its alive mark expired (5 s)
    time.sleep(5)  # the dead worker's claim expires (3 s lease); w2 finds the call taken
    assert marks(remote, f"{label}:start") == 1
    assert marks(remote, f"{label}:end") == 0
    remote.stop_workers()


def test_convect_dev_runs_actions_on_its_in_process_worker(
    remote: Deployment, tmp_path: Path
) -> None:
    remote.stop_workers()
    dev = start_server(remote.env, tmp_path / "dev.log", role="dev")
    try:
        assert dev.env["CONVECT_RUN_ACTIONS"] == "worker"
        out = run_script("action_call.mjs", dev.url, "remote:where", "{}", "", "http")
        assert out["value"] == {"pid": dev.proc.pid, "subject": None}, out
        assert any(f"running in {dev.proc.pid}" in line for line in out["logs"])
    finally:
        dev.stop()
